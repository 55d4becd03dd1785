"""Drop sandboxes (on demand, or when their TTL has passed) after archiving their experiment
record; delete only the versions a sandbox owns, never one another environment or release uses."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime

from elt_platform.environments import (
    CORE_ENVIRONMENTS,
    EnvironmentKind,
    environment_from_name,
)
from elt_platform.errors import EnvironmentBusy, ProtectedEnvironment
from elt_platform.sandboxes.experiment import ExperimentStore
from elt_platform.store.ledger import LedgerKind
from elt_platform.store.pointers import EnvironmentRecord
from elt_platform.store.warehouse import Warehouse

# A version is owned by a sandbox when it was first created there and nothing else points at it.
_OWNED_SQL = """
SELECT v.asset, v.version_id, v.bytes FROM versions v
WHERE v.environment = :env
  AND NOT EXISTS (SELECT 1 FROM env_pointers p WHERE p.asset = v.asset
                  AND p.version_id = v.version_id AND p.environment <> :env)
  AND NOT EXISTS (SELECT 1 FROM release_entries r WHERE r.asset = v.asset
                  AND r.version_id = v.version_id)
ORDER BY v.asset, v.version_id
"""


@dataclass(frozen=True)
class SandboxStatus:
    record: EnvironmentRecord
    age_seconds: float
    expires_in_seconds: float | None
    owned_versions: int
    owned_bytes: int

    @property
    def expired(self) -> bool:
        return self.expires_in_seconds is not None and self.expires_in_seconds <= 0


@dataclass(frozen=True)
class DropResult:
    name: str
    archived_record: str | None
    deleted_versions: list[tuple[str, str]]
    freed_bytes: int


def owned_versions(wh: Warehouse, name: str) -> list[tuple[str, str, int]]:
    """(asset, version_id, bytes) of the versions dropping `name` would delete."""
    with wh.meta.read() as con:
        return [(r[0], r[1], r[2]) for r in con.execute(_OWNED_SQL, {"env": name})]


def sandbox_status(wh: Warehouse, now: datetime | None = None) -> list[SandboxStatus]:
    """Every sandbox with its age, remaining TTL and the data it owns."""
    now = now or datetime.now(UTC)
    out = []
    for record in wh.environments.list():
        if record.environment.kind is not EnvironmentKind.SANDBOX:
            continue
        age = (now - datetime.fromisoformat(record.created_at)).total_seconds()
        expires = None if record.ttl_seconds is None else record.ttl_seconds - age
        owned = owned_versions(wh, record.name)
        out.append(SandboxStatus(record, age, expires, len(owned), sum(b for _, _, b in owned)))
    return out


def drop_sandbox(
    wh: Warehouse, name: str, *, actor: str, reason: str = "dropped", instance=None
) -> DropResult:
    """Archive the record, remove the sandbox and its pointers (with an audit entry, in one
    transaction), then delete its owned versions, catalog and scratch files."""
    env = environment_from_name(name)
    if env.name in CORE_ENVIRONMENTS:
        raise ProtectedEnvironment(f"{env.name!r} cannot be dropped")
    record = wh.environments.get(env.name)  # unknown -> clear error, nothing changed
    wh.locks.acquire(env.name, holder=f"drop by {actor}")  # a running build -> EnvironmentBusy
    try:
        owned = owned_versions(wh, env.name)
        summary = {
            "reason": reason,
            "actor": actor,
            "base_release": record.base_release,
            "pointers": wh.environments.pointers(env.name),
            "deleted_versions": [f"{a}@{v}" for a, v, _ in owned],
            "freed_bytes": sum(b for _, _, b in owned),
        }
        archived = ExperimentStore(wh.root, wh.meta).archive(env.name, reason, summary)
        kind = LedgerKind.SANDBOX_PRUNED if reason == "pruned" else LedgerKind.SANDBOX_DROPPED
        wh.environments.drop(
            env.name,
            on_commit=lambda tx: wh.ledger.append(
                kind,
                actor=actor,
                environment=env.name,
                tx=tx,
                params={k: v for k, v in summary.items() if k != "pointers"},
                assets=summary["pointers"],
            ),
        )
        deleted = []
        still_owned = {(a, v) for a, v, _ in owned_versions(wh, env.name)}
        for asset, version_id, _ in owned:
            # Re-checked after the pointers are gone: a version another environment started using
            # meanwhile is no longer in `still_owned` and is kept.
            if (asset, version_id) in still_owned:
                wh.versions.delete(asset, version_id)
                deleted.append((asset, version_id))
        wh.catalogs.drop(env.name)
        shutil.rmtree(wh.root / "work" / env.name, ignore_errors=True)
    finally:
        wh.locks.release_all()
    if instance is not None:
        # Imported here: only a caller holding an instance has paid for Dagster's import.
        from elt_platform.orchestration.partitions import remove_environment_partition

        remove_environment_partition(instance, env.name)
    freed = sum(b for a, v, b in owned if (a, v) in set(deleted))
    return DropResult(env.name, str(archived) if archived else None, deleted, freed)


def prune_expired(
    wh: Warehouse,
    *,
    actor: str = "schedule:prune_sandboxes",
    now: datetime | None = None,
    instance=None,
) -> list[DropResult]:
    """Drop every sandbox whose TTL has passed (a busy one is left for the next evaluation)."""
    results = []
    for status in sandbox_status(wh, now):
        if not status.expired:
            continue
        try:
            name = status.record.name
            results.append(drop_sandbox(wh, name, actor=actor, reason="pruned", instance=instance))
        except EnvironmentBusy:
            continue
    return results
