"""The audit ledger: an append-only, hash-chained record of every consequential platform event.

It lives in the metadata store, so an event (a release, a rollback) and its ledger entry commit in
one transaction. Each entry's hash is sha256 over the canonical JSON of its fields and the previous
entry's hash; `verify` recomputes the chain and names the first entry edited, deleted, inserted or
reordered. Triggers refuse UPDATE and DELETE, so only someone bypassing the platform can tamper.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elt_platform.errors import InvalidLedgerEntry
from elt_platform.store.metadata import MetadataStore, utc_now

GENESIS = "0" * 64
_KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    environment TEXT,
    run_id TEXT,
    code_version TEXT,
    params_json TEXT NOT NULL,
    assets_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS ix_ledger_at ON ledger(at);
CREATE INDEX IF NOT EXISTS ix_ledger_run ON ledger(run_id);
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
"""


class LedgerKind:
    """The event kinds the platform writes (any dotted lowercase name is accepted)."""

    RELEASE_PUBLISHED = "release.published"
    RELEASE_ROLLED_BACK = "release.rolled_back"
    GATE_EVALUATED = "gate.evaluated"
    SANDBOX_CREATED = "sandbox.created"
    SANDBOX_DROPPED = "sandbox.dropped"
    SANDBOX_PRUNED = "sandbox.pruned"
    CONTRACT_CHANGED = "contract.changed"
    QUARANTINE_REPLAYED = "quarantine.replayed"
    ACCESS_DENIED = "access.denied"
    RETENTION_DELETED = "retention.deleted"


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    at: str
    kind: str
    actor: str
    environment: str | None
    run_id: str | None
    code_version: str | None
    params: dict[str, Any] = field(default_factory=dict)
    assets: dict[str, str] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def hashed_fields(self) -> dict[str, Any]:
        """The fields covered by the hash; `seq` is storage order, checked through the chain."""
        return {
            "at": self.at,
            "kind": self.kind,
            "actor": self.actor,
            "environment": self.environment,
            "run_id": self.run_id,
            "code_version": self.code_version,
            "params": self.params,
            "assets": self.assets,
        }


@dataclass(frozen=True)
class Tampering:
    """The first place where the stored chain differs from an untouched one."""

    kind: str  # edited | deleted | inserted | reordered | truncated
    seq: int | None
    message: str


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    head: str
    problem: Tampering | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(fields: dict[str, Any], prev_hash: str) -> str:
    return hashlib.sha256((canonical_json(fields) + prev_hash).encode()).hexdigest()


def _normalise(value: dict | None) -> dict:
    # Round-trip through JSON so that what is hashed is exactly what is stored and read back.
    return json.loads(json.dumps(value or {}, sort_keys=True, default=str))


def _since_text(since: datetime | str) -> str:
    if isinstance(since, str):
        since = datetime.fromisoformat(since)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since.astimezone(UTC).isoformat(timespec="microseconds")


class Ledger:
    """Appends entries and reads or verifies the chain; it never updates or deletes a row."""

    def __init__(
        self, meta: MetadataStore, code_version: Callable[[], str | None] | None = None
    ) -> None:
        self.meta = meta
        self._code_version = code_version  # default for entries that name none
        with self.meta.read() as con:
            con.executescript(SCHEMA)

    def append(
        self,
        kind: str,
        *,
        actor: str,
        environment: str | None,
        run_id: str | None = None,
        code_version: str | None = None,
        params: dict[str, Any] | None = None,
        assets: dict[str, str] | None = None,
        tx: sqlite3.Connection | None = None,
    ) -> LedgerEntry:
        """Append one entry; pass `tx` (an open write transaction) to commit it with that work."""
        if not isinstance(kind, str) or _KIND_RE.fullmatch(kind) is None:
            raise InvalidLedgerEntry(f"invalid ledger entry kind {kind!r}")
        if not actor:
            raise InvalidLedgerEntry(f"ledger entry {kind!r} has no actor")
        if code_version is None and self._code_version is not None:
            code_version = self._code_version()
        draft = dict(
            at=utc_now(),
            kind=kind,
            actor=actor,
            environment=environment,
            run_id=run_id,
            code_version=code_version,
            params=_normalise(params),
            assets={str(k): str(v) for k, v in (assets or {}).items()},
        )
        if tx is not None:
            return self._append(tx, draft)
        with self.meta.transaction() as own:
            return self._append(own, draft)

    def _append(self, tx: sqlite3.Connection, draft: dict[str, Any]) -> LedgerEntry:
        last = tx.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1])
        entry = LedgerEntry(seq=seq, prev_hash=prev, **draft)
        digest = entry_hash(entry.hashed_fields(), prev)
        tx.execute(
            "INSERT INTO ledger (seq, at, kind, actor, environment, run_id, code_version,"
            " params_json, assets_json, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                seq,
                entry.at,
                entry.kind,
                entry.actor,
                entry.environment,
                entry.run_id,
                entry.code_version,
                canonical_json(entry.params),
                canonical_json(entry.assets),
                prev,
                digest,
            ),
        )
        return LedgerEntry(**{**entry.__dict__, "hash": digest})

    def entries(
        self,
        *,
        asset: str | None = None,
        since: datetime | str | None = None,
        kind: str | None = None,
        environment: str | None = None,
        run_id: str | None = None,
    ) -> list[LedgerEntry]:
        """Entries in chain order, optionally only those touching an asset, kind, env or run."""
        where, args = [], []
        if asset is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(ledger.assets_json) j WHERE j.key = ?)")
            args.append(asset)
        if since is not None:
            where.append("at >= ?")
            args.append(_since_text(since))
        for column, value in (("kind", kind), ("environment", environment), ("run_id", run_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM ledger" + (" WHERE " + " AND ".join(where) if where else "")
        with self.meta.read() as con:
            return [_entry(r) for r in con.execute(sql + " ORDER BY seq", args)]

    def head(self) -> tuple[int, str]:
        """(number of the last entry, its hash): publish it elsewhere to detect tail truncation."""
        with self.meta.read() as con:
            row = con.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (row[0], row[1])

    def verify(self, *, expected_head: str | None = None) -> VerifyReport:
        """Recompute the chain; report the first entry edited, deleted, inserted or reordered."""
        with self.meta.read() as con:
            rows = con.execute("SELECT * FROM ledger ORDER BY seq").fetchall()
        entries = [_entry(r) for r in rows]
        problem = find_tampering(entries)
        head = entries[-1].hash if entries else GENESIS
        if problem is None and expected_head and expected_head not in {e.hash for e in entries}:
            problem = Tampering(
                "truncated", None, f"the expected head {expected_head[:12]} is not in the ledger"
            )
        return VerifyReport(entries=len(entries), head=head, problem=problem)


def find_tampering(entries: list[LedgerEntry]) -> Tampering | None:
    """Walk the chain in storage order and classify the first inconsistency."""
    position = {e.hash: i for i, e in enumerate(entries)}
    prev, prev_seq = GENESIS, 0
    for i, e in enumerate(entries):
        if e.prev_hash != prev:
            return _classify_break(entries, i, prev, prev_seq, position.get(e.prev_hash))
        if entry_hash(e.hashed_fields(), e.prev_hash) != e.hash:
            return Tampering("edited", e.seq, f"entry {e.seq} was edited (its hash does not match)")
        prev, prev_seq = e.hash, e.seq
    return None


def _classify_break(
    entries: list[LedgerEntry], i: int, prev: str, prev_seq: int, linked_at: int | None
) -> Tampering:
    """Entry `i` does not link to the entry stored before it: find out why."""
    e = entries[i]
    following = entries[i + 1] if i + 1 < len(entries) else None
    if linked_at is not None and linked_at > i:
        return Tampering(
            "reordered",
            e.seq,
            f"entry {e.seq} was reordered (it follows entry {entries[linked_at].seq} in the chain)",
        )
    if linked_at is not None and linked_at < i - 1:
        forged = entries[linked_at + 1]
        return Tampering(
            "inserted",
            forged.seq,
            f"entry {forged.seq} was inserted (entry {e.seq} follows "
            f"entry {entries[linked_at].seq} in the chain)",
        )
    if following is not None and following.prev_hash == prev:
        return Tampering(
            "inserted",
            e.seq,
            f"entry {e.seq} was inserted (entry {following.seq} follows "
            f"entry {prev_seq} in the chain)",
        )
    if entry_hash(e.hashed_fields(), e.prev_hash) != e.hash:
        return Tampering("edited", e.seq, f"entry {e.seq} was edited (its hash does not match)")
    if e.seq == prev_seq + 1 and i > 0:
        return Tampering(
            "edited",
            prev_seq,
            f"entry {prev_seq} was edited (its hash was recomputed; "
            f"entry {e.seq} no longer links to it)",
        )
    gone = f"entry {prev_seq + 1} was" if e.seq == prev_seq + 2 else f"entries before {e.seq} were"
    return Tampering(
        "deleted", prev_seq + 1, f"{gone} deleted (entry {e.seq} does not link to entry {prev_seq})"
    )


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        seq=row["seq"],
        at=row["at"],
        kind=row["kind"],
        actor=row["actor"],
        environment=row["environment"],
        run_id=row["run_id"],
        code_version=row["code_version"],
        params=json.loads(row["params_json"]),
        assets=json.loads(row["assets_json"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
