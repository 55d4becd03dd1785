"""The store's parts as one identity may use them: each read and write of environments, versions,
releases, the ledger and catalogs is checked against the policy before it reaches the store.

They keep the store's method names, so platform code written against the store runs unchanged
behind the facade; a method a part does not define does not exist for callers (no pass-through).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from elt_platform.access.control import READ, WRITE, AccessControl
from elt_platform.environments import PROD
from elt_platform.errors import UnknownEnvironment
from elt_platform.project.policies import Action
from elt_platform.store.catalog import CatalogStore
from elt_platform.store.ledger import Ledger, LedgerEntry, LedgerKind, VerifyReport
from elt_platform.store.pointers import EnvironmentRecord, EnvironmentRegistry
from elt_platform.store.releases import Release, ReleaseStore
from elt_platform.store.versions import PartStats, Version, VersionStore

OnCommit = Callable[[sqlite3.Connection], None]


class GovernedEnvironments:
    """Environment records and pointers: reads need read access, changes write access. A change
    always commits with a ledger entry (a default one when the caller brings none), so the
    ledger's recorded state stays the store's state."""

    def __init__(self, inner: EnvironmentRegistry, access: AccessControl, ledger: Ledger) -> None:
        self._inner, self._access, self._ledger = inner, access, ledger

    def get(self, name: str) -> EnvironmentRecord:
        self._access.check(READ, name)
        return self._inner.get(name)

    def exists(self, name: str) -> bool:
        """Whether `name` is a registered environment. Not access-checked: the names are public
        (they are the Dagster partitions every UI user sees); nothing of an environment is read."""
        try:
            self._inner.get(name)
        except UnknownEnvironment:
            return False
        return True

    def list(self) -> list[EnvironmentRecord]:
        """The environments the caller may read (others are left out, not refused)."""
        self._access.check_identity()
        return [r for r in self._inner.list() if self._access.denial(READ, r.name) is None]

    def pointers(self, name: str) -> dict[str, str]:
        self._access.check(READ, name)
        return self._inner.pointers(name)

    def pointer_builds(self, name: str) -> dict[str, str | None]:
        self._access.check(READ, name)
        return self._inner.pointer_builds(name)

    def set_pointers(
        self,
        name: str,
        pointers: dict[str, str],
        *,
        run_id: str | None,
        builds: dict[str, str | None] | None = None,
    ) -> None:
        """Move pointers of a buildable environment (ledgered); builds use `commit_pointers`."""
        self._access.check(WRITE, name)
        entry = self._entry(LedgerKind.POINTERS_COMMITTED, name, {}, assets=pointers)
        self._inner.set_pointers(name, pointers, run_id=run_id, builds=builds, on_commit=entry)

    def create_sandbox(
        self, name: str, *, owner: str | None = None, on_commit: OnCommit | None = None, **kwargs
    ) -> EnvironmentRecord:
        self._access.check(WRITE, name, owner=owner)
        on_commit = on_commit or self._entry(LedgerKind.SANDBOX_CREATED, name, {"owner": owner})
        return self._inner.create_sandbox(name, owner=owner, on_commit=on_commit, **kwargs)

    def drop(self, name: str, *, on_commit: OnCommit | None = None) -> None:
        self._access.check(WRITE, name)
        self._access.remember_owner(name)
        on_commit = on_commit or self._entry(LedgerKind.SANDBOX_DROPPED, name, {})
        self._inner.drop(name, on_commit=on_commit)

    def _entry(self, kind: str, name: str, params: dict, assets: dict | None = None) -> OnCommit:
        actor = self._access.identity.actor
        return lambda tx: self._ledger.append(
            kind, actor=actor, environment=name, params=params, assets=assets, tx=tx
        )


class GovernedVersions:
    """Versions: metadata readable where the version is used; commits need write access to the
    environment they are built for; deleting needs write access to the one that built it."""

    def __init__(self, inner: VersionStore, access: AccessControl) -> None:
        self._inner, self._access = inner, access
        self.root, self.versions_dir = inner.root, inner.versions_dir
        self.pending_dir = inner.pending_dir

    def get(
        self, asset: str, version_id: str, *, reused: bool = False, build_id: str | None = None
    ) -> Version:
        self._access.check_version_read(asset, version_id)
        return self._inner.get(asset, version_id, reused=reused, build_id=build_id)

    def record(self, asset: str, version_id: str) -> dict:
        self._access.check_version_read(asset, version_id)
        return self._inner.record(asset, version_id)

    def list(self, asset: str | None = None) -> list[Version]:
        """The versions the caller may read (others are left out, not refused)."""
        versions = self._inner.list(asset)
        if self._access.reads_everything():
            return versions
        return [v for v in versions if self._access.version_denial(v.asset, v.version_id) is None]

    def part_files(self, version: Version) -> list[Path]:
        self._access.check_version_read(version.asset, version.version_id)
        return self._inner.part_files(version)

    def part_stats(self, con: duckdb.DuckDBPyConnection, version: Version) -> dict[str, PartStats]:
        self._access.check_version_read(version.asset, version.version_id)
        return self._inner.part_stats(con, version)

    def new_pending_path(self) -> Path:
        return self._inner.new_pending_path()

    def new_pending_dir(self) -> Path:
        return self._inner.new_pending_dir()

    def write_query(self, con, asset: str, select_sql: str, **record: Any) -> Version:
        self._access.check(WRITE, str(record.get("environment")))
        return self._inner.write_query(con, asset, select_sql, **record)

    def commit_file(self, con, asset: str, pending: Path, *, environment: str, **record) -> Version:
        self._access.check(WRITE, environment)
        return self._inner.commit_file(con, asset, pending, environment=environment, **record)

    def commit_parts(self, con, asset: str, new_parts, reused_parts=(), *, environment: str, **kw):
        self._access.check(WRITE, environment)
        return self._inner.commit_parts(
            con, asset, new_parts, reused_parts, environment=environment, **kw
        )

    def delete(self, asset: str, version_id: str) -> None:
        self._access.check(WRITE, self._inner.record(asset, version_id)["environment"])
        self._inner.delete(asset, version_id)

    def orphans(self, recorded, older_than: float) -> list[str]:
        """Version folders no record names: collecting them is GC's, which needs write access
        to prod."""
        self._access.check(WRITE, PROD)
        return self._inner.files.orphans(recorded, older_than)

    def discard_orphan(self, orphan: str) -> None:
        self._access.check(WRITE, PROD)
        self._inner.files.discard_orphan(orphan)

    def discard_files(self, asset: str, version_id: str) -> None:
        """Files of a version whose record a checked operation (GC) already deleted."""
        self._inner.discard_files(asset, version_id)


class GovernedReleases:
    """Releases are what prod serves: reading them needs read access to prod."""

    def __init__(self, inner: ReleaseStore, access: AccessControl) -> None:
        self._inner, self._access = inner, access

    def get(self, release_id: str) -> Release:
        self._access.check(READ, PROD)
        return self._inner.get(release_id)

    def list(self) -> list[Release]:
        self._access.check(READ, PROD)
        return self._inner.list()

    def current(self) -> Release | None:
        self._access.check(READ, PROD)
        return self._inner.current()

    def hold(self, release_id: str, holder: str, reason: str = "") -> None:
        self._access.check(WRITE, PROD)
        self._inner.hold(release_id, holder, reason)


class GovernedLedger:
    """The audit ledger: any identity that may act leaves entries; reading needs `read_ledger`."""

    def __init__(self, inner: Ledger, access: AccessControl) -> None:
        self._inner, self._access = inner, access

    def append(self, kind: str, **kwargs) -> LedgerEntry:
        self._access.check_identity()
        return self._inner.append(kind, **kwargs)

    def entries(self, **filters) -> list[LedgerEntry]:
        self._access.check(Action.READ_LEDGER)
        return self._inner.entries(**filters)

    def head(self) -> tuple[int, str]:
        self._access.check(Action.READ_LEDGER)
        return self._inner.head()

    def verify(self, **kwargs) -> VerifyReport:
        self._access.check(Action.READ_LEDGER)
        return self._inner.verify(**kwargs)


class GovernedCatalogAccess:
    """Catalog files: connecting reads through the role's masked views; rebuilding one (derived
    data) needs read access; dropping one needs write access."""

    def __init__(self, inner: CatalogStore, access: AccessControl) -> None:
        self._inner, self._access = inner, access
        self.sandbox_relations = inner.sandbox_relations
        self.dir = inner.dir  # where catalog files live (their content is read through connect)

    def connect(self, environment: str) -> duckdb.DuckDBPyConnection:
        return self._access.connect(environment)

    def path(self, environment: str) -> Path:
        self._access.check(READ, environment)
        return self._inner.path(environment)

    def rebuild(self, environment: str) -> Path:
        self._access.check(READ, environment)
        return self._inner.rebuild(environment)

    def ensure_fresh(self, environment: str) -> Path:
        self._access.check(READ, environment)
        return self._inner.ensure_fresh(environment)

    def drop(self, environment: str) -> None:
        self._access.check(WRITE, environment)
        self._inner.drop(environment)
