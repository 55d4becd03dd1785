"""Releases: immutable manifests (asset -> version) and the one atomic step that moves prod."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from elt_platform.environments import PROD
from elt_platform.errors import NothingToPublish, ReleaseCollected, UnknownRelease
from elt_platform.store.metadata import MetadataStore, utc_now


@dataclass(frozen=True)
class Release:
    release_id: str
    seq: int
    created_at: str
    source_environment: str
    code_version: str | None
    triggered_by: str
    manifest: dict[str, str]
    gate_summary: dict = field(default_factory=dict)
    run_id: str | None = None
    collected_at: str | None = None
    builds: dict[str, str | None] = field(default_factory=dict)  # asset -> build published


@dataclass(frozen=True)
class PublishResult:
    release: Release
    previous_release: str | None
    changed: bool
    changed_assets: tuple[str, ...]
    ledger_head: tuple[int, str] | None = None  # (seq, hash) anchored after the move


OnCommit = Callable[[sqlite3.Connection, PublishResult], None]


def manifest_hash(manifest: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(manifest.items())).encode()).hexdigest()


class ReleaseStore:
    """Reads releases and moves prod between them inside one metadata transaction."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def get(self, release_id: str) -> Release:
        with self.meta.read() as con:
            release = _load(con, release_id)
        if release is None:
            raise UnknownRelease(f"unknown release {release_id!r}")
        if release.collected_at:
            with self.meta.read() as con:
                hint = _collected_hint(con)
            raise ReleaseCollected(
                f"release {release_id!r} was garbage-collected at {release.collected_at[:19]}",
                hint=hint,
            )
        return release

    def hold(self, release_id: str, holder: str, reason: str = "") -> None:
        """Protect a release (and its versions) from garbage collection, e.g. for an archive."""
        self.get(release_id)
        with self.meta.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO release_holds (release_id, holder, reason, created_at)"
                " VALUES (?,?,?,?)",
                (release_id, holder, reason, utc_now()),
            )

    def list(self) -> list[Release]:
        with self.meta.read() as con:
            ids = [r[0] for r in con.execute("SELECT release_id FROM releases ORDER BY seq DESC")]
            return [_load(con, rid) for rid in ids]

    def current(self) -> Release | None:
        with self.meta.read() as con:
            row = con.execute("SELECT current_release FROM environments WHERE name = ?", (PROD,))
            found = row.fetchone()
            if found is None or found[0] is None:
                return None
            return _load(con, found[0])

    def publish(
        self,
        candidate: dict[str, str],
        *,
        source_environment: str,
        triggered_by: str,
        code_version: str | None = None,
        gate_summary: dict | None = None,
        run_id: str | None = None,
        builds: dict[str, str | None] | None = None,
        on_commit: OnCommit | None = None,
    ) -> PublishResult:
        """Publish `candidate` (asset -> version, built by `builds`) over the current prod
        manifest, atomically.

        A release is always a full snapshot of prod. Publishing content identical to the current
        release changes nothing and returns that release with `changed=False`. `on_commit` runs
        inside the transaction after prod moved (the audit ledger entry commits with it).
        """
        if not candidate:
            raise NothingToPublish(f"environment {source_environment!r} has no versions to publish")
        with self.meta.transaction() as tx:
            current = _current_id(tx)
            base = _entries(tx, current) if current else {}
            manifest = {**base, **candidate}
            built_by = {**(_builds(tx, current) if current else {}), **(builds or {})}
            changed = tuple(sorted(a for a, v in manifest.items() if base.get(a) != v))
            if current is not None and not changed:
                return PublishResult(_load(tx, current), current, False, ())
            seq = (tx.execute("SELECT coalesce(max(seq), 0) FROM releases").fetchone()[0]) + 1
            digest = manifest_hash(manifest)
            release_id = f"r{seq:04d}-{digest[:8]}"
            tx.execute(
                "INSERT INTO releases (release_id, seq, created_at, source_environment,"
                " code_version, triggered_by, manifest_hash, gate_summary_json, run_id)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    release_id,
                    seq,
                    utc_now(),
                    source_environment,
                    code_version,
                    triggered_by,
                    digest,
                    json.dumps(gate_summary or {}, default=str),
                    run_id,
                ),
            )
            tx.executemany(
                "INSERT INTO release_entries (release_id, asset, version_id, build_id)"
                " VALUES (?,?,?,?)",
                [(release_id, a, v, built_by.get(a)) for a, v in sorted(manifest.items())],
            )
            point_prod(tx, release_id, manifest, "publish", triggered_by, run_id, current)
            result = PublishResult(_load(tx, release_id), current, True, changed)
            if on_commit is not None:
                on_commit(tx, result)
        return result

    def rollback(
        self,
        release_id: str,
        *,
        actor: str,
        run_id: str | None = None,
        on_commit: OnCommit | None = None,
    ) -> PublishResult:
        """Point prod at an earlier release in one transaction."""
        with self.meta.transaction() as tx:
            target = _load(tx, release_id)
            if target is None:
                raise UnknownRelease(f"unknown release {release_id!r}")
            if target.collected_at:
                raise ReleaseCollected(
                    f"release {release_id!r} was garbage-collected", hint=_collected_hint(tx)
                )
            current = _current_id(tx)
            base = _entries(tx, current) if current else {}
            changed = tuple(
                sorted(
                    a
                    for a in set(base) | set(target.manifest)
                    if base.get(a) != target.manifest.get(a)
                )
            )
            point_prod(tx, release_id, target.manifest, "rollback", actor, run_id, current)
            result = PublishResult(target, current, current != release_id, changed)
            if on_commit is not None:
                on_commit(tx, result)
        return result


def _collected_hint(con: sqlite3.Connection) -> str:
    """Which releases prod can still be rolled back to (kept, not the current one), newest first."""
    current = _current_id(con)
    kept = [
        r[0]
        for r in con.execute(
            "SELECT release_id FROM releases WHERE collected_at IS NULL ORDER BY seq DESC"
        )
        if r[0] != current
    ]
    if not kept:
        return (
            "no kept release other than prod's current one; collected releases cannot be restored"
        )
    return f"kept releases you can roll back to: {', '.join(kept)}"


def point_prod(
    tx: sqlite3.Connection,
    release_id: str,
    manifest: dict[str, str],
    action: str,
    actor: str,
    run_id: str | None,
    previous: str | None,
) -> None:
    """Inside `tx`: make prod's pointers equal the release's entries and record the move."""
    now = utc_now()
    builds = _builds(tx, release_id)
    tx.execute("DELETE FROM env_pointers WHERE environment = ?", (PROD,))
    tx.executemany(
        "INSERT INTO env_pointers (environment, asset, version_id, updated_at, run_id, build_id)"
        " VALUES (?,?,?,?,?,?)",
        [(PROD, a, v, now, run_id, builds.get(a)) for a, v in sorted(manifest.items())],
    )
    tx.execute("UPDATE environments SET current_release = ? WHERE name = ?", (release_id, PROD))
    tx.execute(
        "INSERT INTO pointer_events (environment, action, release_id, previous_release, at,"
        " actor, run_id) VALUES (?,?,?,?,?,?,?)",
        (PROD, action, release_id, previous, now, actor, run_id),
    )


def _current_id(con: sqlite3.Connection) -> str | None:
    row = con.execute("SELECT current_release FROM environments WHERE name = ?", (PROD,)).fetchone()
    return None if row is None else row[0]


def _entries(con: sqlite3.Connection, release_id: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT asset, version_id FROM release_entries WHERE release_id = ?", (release_id,)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def _builds(con: sqlite3.Connection, release_id: str) -> dict[str, str | None]:
    rows = con.execute(
        "SELECT asset, build_id FROM release_entries WHERE release_id = ?", (release_id,)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def _load(con: sqlite3.Connection, release_id: str) -> Release | None:
    row = con.execute("SELECT * FROM releases WHERE release_id = ?", (release_id,)).fetchone()
    if row is None:
        return None
    return Release(
        release_id=row["release_id"],
        seq=row["seq"],
        created_at=row["created_at"],
        source_environment=row["source_environment"],
        code_version=row["code_version"],
        triggered_by=row["triggered_by"],
        manifest=_entries(con, release_id),
        gate_summary=json.loads(row["gate_summary_json"] or "{}"),
        run_id=row["run_id"],
        collected_at=row["collected_at"],
        builds=_builds(con, release_id),
    )
