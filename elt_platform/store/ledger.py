"""The audit ledger: an append-only, hash-chained record of every consequential platform event.

It lives in the metadata store, so an event (a release, a rollback, a pointer move) and its entry
commit in one transaction. Each entry commits to the resulting platform state (`state.py`: every
environment's record, current release and pointers, every release manifest) and its hash is
sha256 over the canonical JSON of its fields and the previous entry's hash; with a ledger key
each entry is also signed (HMAC). The head is anchored outside the metadata store (`anchor.py`).
`verify` (`ledger_checks.py`) recomputes the chain, the signatures, the anchors and the state, so
edits, deletes, inserts, reorders, a cut tail, an emptied or recomputed chain, forged appends and
direct edits of pointers, manifests or current releases are all reported. Triggers refuse UPDATE
and DELETE, so only someone bypassing the platform can tamper.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from elt_platform.errors import InvalidLedgerEntry
from elt_platform.store.anchor import LedgerAnchor, sign
from elt_platform.store.anchor import key_id as ledger_key_id
from elt_platform.store.ledger_checks import (
    anchor_problems_for,
    find_tampering,
    release_manifest_hashes,
    signature_problems,
    state_problems,
)
from elt_platform.store.ledger_model import (  # noqa: F401 - re-exported for callers
    GENESIS,
    LedgerEntry,
    Tampering,
    VerifyReport,
    canonical_json,
    entry_hash,
)
from elt_platform.store.metadata import MetadataStore, utc_now
from elt_platform.store.state import state_snapshot

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
# Columns added after the first release of the ledger (older entries have NULL there).
_ADDED_COLUMNS = {"state_json": "TEXT", "key_id": "TEXT", "mac": "TEXT"}


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
    POINTERS_COMMITTED = "pointers.committed"
    GC_COLLECTED = "gc.collected"

    # Entries that move prod: each must be covered by an anchor written outside the store.
    ANCHORED = (RELEASE_PUBLISHED, RELEASE_ROLLED_BACK)


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
        self,
        meta: MetadataStore,
        code_version: Callable[[], str | None] | None = None,
        anchor: LedgerAnchor | None = None,
    ) -> None:
        self.meta = meta
        self._code_version = code_version  # default for entries that name none
        self.anchor = anchor  # where heads are anchored and the ledger key (None: neither)
        with self.meta.read() as con:
            con.executescript(SCHEMA)
            present = {r[1] for r in con.execute("PRAGMA table_info(ledger)")}
        if set(_ADDED_COLUMNS) - present:
            # Under the write lock, looking again: another process may be adding them too.
            with self.meta.transaction() as tx:
                present = {r[1] for r in tx.execute("PRAGMA table_info(ledger)")}
                for column, sql_type in _ADDED_COLUMNS.items():
                    if column not in present:
                        tx.execute(f"ALTER TABLE ledger ADD COLUMN {column} {sql_type}")

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
            entry = self._append(own, draft)
        self.write_anchor()
        return entry

    def _append(self, tx: sqlite3.Connection, draft: dict[str, Any]) -> LedgerEntry:
        last = tx.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1])
        state = json.loads(canonical_json(state_snapshot(tx)))
        entry = LedgerEntry(seq=seq, prev_hash=prev, state=state, **draft)
        digest = entry_hash(entry.hashed_fields(), prev)
        key = self.anchor.key() if self.anchor is not None else None
        signer, mac = (ledger_key_id(key), sign(key, digest)) if key else (None, None)
        tx.execute(
            "INSERT INTO ledger (seq, at, kind, actor, environment, run_id, code_version,"
            " params_json, assets_json, prev_hash, hash, state_json, key_id, mac)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                canonical_json(state),
                signer,
                mac,
            ),
        )
        return LedgerEntry(**{**entry.__dict__, "hash": digest, "key_id": signer, "mac": mac})

    def write_anchor(self) -> tuple[int, str]:
        """Anchor the current head outside the metadata store (when an anchor is configured);
        called after every transaction that appended entries, and always after prod moves."""
        seq, digest = self.head()
        if self.anchor is not None and seq:
            self.anchor.write(seq, digest)
        return seq, digest

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
        """Recompute the chain, the signatures, the anchors and the state; report each problem
        (the chain's first break, then every other inconsistency)."""
        with self.meta.read() as con:
            con.execute("BEGIN")  # one snapshot: entries and the state they must match
            rows = con.execute("SELECT * FROM ledger ORDER BY seq").fetchall()
            state = json.loads(canonical_json(state_snapshot(con)))
            manifests = release_manifest_hashes(con)
            con.execute("COMMIT")
        entries = [_entry(r) for r in rows]
        problems: list[Tampering] = []
        chain = find_tampering(entries)
        if chain is not None:
            problems.append(chain)
        key = self.anchor.key() if self.anchor is not None else None
        if key:
            problems += signature_problems(entries, key)
        anchors = 0
        if self.anchor is not None:
            found, anchor_problems = self.anchor.read()
            anchors = len(found)
            problems += anchor_problems_for(entries, found, anchor_problems, self.anchor.path)
        problems += state_problems(entries, state, manifests)
        head = entries[-1].hash if entries else GENESIS
        if expected_head and expected_head not in {e.hash for e in entries}:
            problems.append(
                Tampering(
                    "truncated",
                    None,
                    f"the expected head {expected_head[:12]} is not in the ledger",
                )
            )
        return VerifyReport(len(entries), head, tuple(problems), anchors, bool(key))


def _entry(row: sqlite3.Row) -> LedgerEntry:
    keys = row.keys()
    state = row["state_json"] if "state_json" in keys else None
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
        state=json.loads(state) if state else None,
        key_id=row["key_id"] if "key_id" in keys else None,
        mac=row["mac"] if "mac" in keys else None,
    )
