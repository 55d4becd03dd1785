"""The governed warehouse: the store as one identity may use it. Every entry point (CLI, jobs,
sensors, UI launches) opens the warehouse here, so each write of environments and releases and
each read of a catalog is checked against the policy before it reaches the store.

The store underneath (`store/warehouse.py`) knows nothing of policy; this is the only place that
wires masking into sandbox catalogs and the project's code version into the ledger.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from elt_platform.access.control import WRITE, AccessControl
from elt_platform.access.identity import Identity
from elt_platform.access.masking import sandbox_relation_sql
from elt_platform.environments import PROD
from elt_platform.project.code_version import current_code_version
from elt_platform.settings import Settings
from elt_platform.store.builds import BuildStore
from elt_platform.store.catalog import CatalogStore
from elt_platform.store.ledger import Ledger
from elt_platform.store.locks import EnvironmentLocks
from elt_platform.store.metadata import MetadataStore
from elt_platform.store.pointers import EnvironmentRegistry
from elt_platform.store.releases import PublishResult, ReleaseStore
from elt_platform.store.versions import Version, VersionStore
from elt_platform.store.warehouse import Warehouse


class GovernedWarehouse:
    """The store bound to an identity: writes and catalog reads are authorized first."""

    def __init__(self, store: Warehouse, settings: Settings, identity: Identity | None = None):
        self.store = store
        self.settings = settings
        self.access = AccessControl(store, settings, identity)

    # The parts of the store, for the reads and bookkeeping the platform does on a caller's
    # behalf (what a caller may see of them is checked where it is shown).
    @property
    def root(self) -> Path:
        return self.store.root

    @property
    def meta(self) -> MetadataStore:
        return self.store.meta

    @property
    def versions(self) -> VersionStore:
        return self.store.versions

    @property
    def builds(self) -> BuildStore:
        return self.store.builds

    @property
    def environments(self) -> EnvironmentRegistry:
        return self.store.environments

    @property
    def releases(self) -> ReleaseStore:
        return self.store.releases

    @property
    def catalogs(self) -> CatalogStore:
        return self.store.catalogs

    @property
    def locks(self) -> EnvironmentLocks:
        return self.store.locks

    @property
    def ledger(self) -> Ledger:
        return self.store.ledger

    @property
    def identity(self) -> Identity:
        return self.access.identity

    def bind_identity(self, identity: Identity | None) -> None:
        """Act as `identity` from now on (e.g. the identity in a Dagster run's tags)."""
        self.access = AccessControl(self.store, self.settings, identity)

    def authorize(self, action: str, environment: str | None = None, *, owner: str | None = None):
        """Raise AccessDenied (ledgered) unless the caller's role allows `action`."""
        self.access.check(action, environment, owner=owner)

    def connect(self, environment: str) -> duckdb.DuckDBPyConnection:
        """Read an environment as the caller may see it (masked views for restricted roles)."""
        return self.access.connect(environment)

    def scratch_path(self, environment: str) -> Path:
        return self.store.scratch_path(environment)

    def resolve(self, environment: str) -> dict[str, Version]:
        """The versions an environment points at (for the platform's own use)."""
        return self.store.resolve(environment)

    def commit_pointers(
        self, environment: str, versions: dict[str, Version], *, run_id: str | None
    ) -> None:
        """Make `versions` visible in a buildable environment at once; refresh its catalog."""
        if versions:
            self.authorize(WRITE, environment)
        self.store.commit_pointers(environment, versions, run_id=run_id)

    def publish(self, source_environment: str, **kwargs) -> PublishResult:
        """Publish the source environment's pointers (or a subset) to prod as one release."""
        self.authorize(WRITE, PROD)
        return self.store.publish(source_environment, **kwargs)

    def publish_versions(self, candidate: dict[str, str], **kwargs) -> PublishResult:
        """Publish explicit asset -> version pointers over prod as one release (ledgered)."""
        self.authorize(WRITE, PROD)
        return self.store.publish_versions(candidate, **kwargs)

    def rollback(self, release_id: str, *, actor: str, run_id: str | None = None) -> PublishResult:
        """Point prod at an earlier release in one transaction (ledgered)."""
        self.authorize(WRITE, PROD)
        return self.store.rollback(release_id, actor=actor, run_id=run_id)


def open_store(settings: Settings) -> Warehouse:
    """The store of an installation with sandbox masking and the code version wired in."""
    return Warehouse(
        settings.warehouse_dir,
        sandbox_relations=sandbox_relation_sql,
        code_version=lambda: current_code_version(settings.dbt_project_dir).label,
    )


def open_warehouse(settings: Settings, identity: Identity | None = None) -> GovernedWarehouse:
    """The warehouse as `identity` (default: the caller's identity from the environment)."""
    return GovernedWarehouse(open_store(settings), settings, identity)
