"""Garbage collection: keep the newest N releases plus every release that is held (prod's,
sandbox bases, archived experiments); delete versions nothing references any more, and what a
killed writer left once it is older than the grace period: files in `versions/_pending`, and
version folders (local, or in the object store) it installed or uploaded but never recorded."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elt_platform.access.control import WRITE
from elt_platform.access.facade import GovernedWarehouse
from elt_platform.environments import PROD
from elt_platform.store.builds import delete_builds_of
from elt_platform.store.ledger import LedgerKind
from elt_platform.store.metadata import utc_now


@dataclass
class GcReport:
    kept_releases: list[str] = field(default_factory=list)
    collected_releases: list[str] = field(default_factory=list)
    deleted_versions: list[tuple[str, str]] = field(default_factory=list)
    freed_bytes: int = 0
    pending_removed: list[str] = field(default_factory=list)  # orphans of killed writers
    orphans_removed: list[str] = field(default_factory=list)  # unrecorded version folders


def protected_releases(tx) -> set[str]:
    """Releases that must survive: prod's current one, sandbox bases, explicit holds."""
    held = {r[0] for r in tx.execute("SELECT release_id FROM release_holds")}
    bases = {
        r[0]
        for r in tx.execute(
            "SELECT coalesce(current_release, base_release) FROM environments"
            " WHERE coalesce(current_release, base_release) IS NOT NULL"
        )
    }
    return held | bases


def collect_garbage(
    wh: GovernedWarehouse, *, keep: int, grace: timedelta, actor: str, dry_run: bool = False
) -> GcReport:
    """Decide and record everything in one transaction; delete files only after it commits.
    Collecting releases changes what prod can roll back to: it needs write access to prod."""
    wh.authorize(WRITE, PROD)
    report = GcReport()
    cutoff = (datetime.now(UTC) - grace).isoformat(timespec="microseconds")
    with wh.meta.transaction() as tx:
        live = [
            r[0]
            for r in tx.execute(
                "SELECT release_id FROM releases WHERE collected_at IS NULL ORDER BY seq DESC"
            )
        ]
        keep_set = set(live[:keep]) | (protected_releases(tx) & set(live))
        report.kept_releases = [r for r in live if r in keep_set]
        report.collected_releases = [r for r in live if r not in keep_set]
        referenced = {
            (r[0], r[1]) for r in tx.execute("SELECT asset, version_id FROM env_pointers")
        }
        for release_id in report.kept_releases:
            referenced |= {
                (r[0], r[1])
                for r in tx.execute(
                    "SELECT asset, version_id FROM release_entries WHERE release_id = ?",
                    (release_id,),
                )
            }
        recorded = tx.execute(
            "SELECT asset, version_id, bytes, created_at FROM versions"
        ).fetchall()
        for asset, version_id, size, created in recorded:
            if (asset, version_id) in referenced or created > cutoff:
                continue
            report.deleted_versions.append((asset, version_id))
            report.freed_bytes += size
        report.pending_removed = _stale_pending(wh.versions.pending_dir, grace)
        # Listed while no writer can record a version (the versions this collection deletes
        # are recorded, not orphans; their files go below with their records).
        report.orphans_removed = wh.versions.orphans(
            [(r[0], r[1]) for r in recorded], time.time() - grace.total_seconds()
        )
        if dry_run:
            return report  # nothing was written; the empty transaction commits harmlessly
        now = utc_now()
        tx.executemany(
            "UPDATE releases SET collected_at = ? WHERE release_id = ?",
            [(now, r) for r in report.collected_releases],
        )
        tx.executemany(
            "DELETE FROM versions WHERE asset = ? AND version_id = ?", report.deleted_versions
        )
        delete_builds_of(tx, report.deleted_versions)
        if report.collected_releases or report.deleted_versions or report.orphans_removed:
            wh.ledger.append(
                LedgerKind.GC_COLLECTED,
                actor=actor,
                environment=PROD,
                params={
                    "collected_releases": report.collected_releases,
                    "deleted_versions": len(report.deleted_versions),
                    "freed_bytes": report.freed_bytes,
                    "orphans_removed": report.orphans_removed,
                    "keep": keep,
                },
                assets=_by_asset(report.deleted_versions),
                tx=tx,
            )
    for asset, version_id in report.deleted_versions:
        wh.versions.discard_files(asset, version_id)  # local folder and object store
    for orphan in report.orphans_removed:
        wh.versions.discard_orphan(orphan)
    for name in report.pending_removed:
        path = wh.versions.pending_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return report


def _stale_pending(pending_dir: Path, grace: timedelta) -> list[str]:
    """Entries of `_pending` untouched for longer than the grace period: a writer moves its
    pending files into the store minutes after writing them, so only those a killed process
    left behind get this old."""
    if not pending_dir.is_dir():
        return []
    cutoff = time.time() - grace.total_seconds()
    stale = []
    for path in sorted(pending_dir.iterdir()):
        try:
            newest = max(
                [path.stat().st_mtime, *(p.stat().st_mtime for p in path.rglob("*"))]
                if path.is_dir()
                else [path.stat().st_mtime]
            )
        except FileNotFoundError:  # finished (moved into the store) meanwhile
            continue
        if newest < cutoff:
            stale.append(path.name)
    return stale


def _by_asset(pairs: list[tuple[str, str]]) -> dict[str, str]:
    grouped: dict[str, list[str]] = {}
    for asset, version_id in pairs:
        grouped.setdefault(asset, []).append(version_id)
    return {asset: ",".join(sorted(vids)) for asset, vids in grouped.items()}
