"""The governed warehouse: the store as one identity may use it. Every entry point (CLI, jobs,
sensors, UI launches) opens the warehouse here, and every read and write of environments,
versions, releases, the ledger and catalogs goes through a governed part (`governed_parts.py`)
that checks the caller against the policy first; user SQL runs only through `query()`.

The store underneath (`store/warehouse.py`) knows nothing of policy; this is the only place that
wires masking into sandbox catalogs, the project's code version and the ledger's anchor into it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from elt_platform.access.control import READ, WRITE, AccessControl
from elt_platform.access.governed_parts import (
    GovernedCatalogAccess,
    GovernedEnvironments,
    GovernedLedger,
    GovernedReleases,
    GovernedVersions,
)
from elt_platform.access.identity import Identity
from elt_platform.access.masking import sandbox_relation_sql
from elt_platform.environments import PROD, environment_from_name
from elt_platform.errors import InvalidQuery, QueryRefused
from elt_platform.project.code_version import current_code_version
from elt_platform.project.policies import Action
from elt_platform.settings import Settings
from elt_platform.store.anchor import LedgerAnchor
from elt_platform.store.builds import BuildStore
from elt_platform.store.catalog import META_SCHEMA
from elt_platform.store.integrity import DataReport, verify_data
from elt_platform.store.locks import EnvironmentLocks
from elt_platform.store.metadata import MetadataStore
from elt_platform.store.objects import open_object_store
from elt_platform.store.releases import PublishResult
from elt_platform.store.versions import Version
from elt_platform.store.warehouse import Warehouse

if TYPE_CHECKING:  # sqlglot (0.1 s) loads only when a query is checked
    from elt_platform.access.query_guard import CheckedQuery, QueryResult

QUERY = "query"  # the action recorded when a user query is refused
LEDGER_KEY_ENV_VAR = "ELT_LEDGER_KEY"


def ledger_key() -> bytes | None:
    """The key that signs ledger entries and anchors (ELT_LEDGER_KEY), read when used."""
    value = os.environ.get(LEDGER_KEY_ENV_VAR, "")
    return value.encode() if value else None


class GovernedWarehouse:
    """The store bound to an identity: every read and write is authorized first."""

    def __init__(self, store: Warehouse, settings: Settings, identity: Identity | None = None):
        self._store = store
        self.settings = settings
        self.bind_identity(identity)

    def bind_identity(self, identity: Identity | None) -> None:
        """Act as `identity` from now on (e.g. the identity in a Dagster run's tags)."""
        self.access = AccessControl(self._store, self.settings, identity)
        self.environments = GovernedEnvironments(
            self._store.environments, self.access, self._store.ledger
        )
        self.versions = GovernedVersions(self._store.versions, self.access)
        self.releases = GovernedReleases(self._store.releases, self.access)
        self.ledger = GovernedLedger(self._store.ledger, self.access)
        self.catalogs = GovernedCatalogAccess(self._store.catalogs, self.access)

    @property
    def root(self) -> Path:
        return self._store.root

    @property
    def meta(self) -> MetadataStore:
        """The metadata store, for the domains' own bookkeeping tables (experiments, connector
        state, budgets, alerts): only an identity that may act at all gets it."""
        self.access.check_identity()
        return self._store.meta

    @property
    def builds(self) -> BuildStore:
        """Build records (provenance and gate outcomes), for the platform's planning, gates and
        promotion: only an identity that may act at all gets them."""
        self.access.check_identity()
        return self._store.builds

    @property
    def locks(self) -> EnvironmentLocks:
        return self._store.locks

    @property
    def identity(self) -> Identity:
        return self.access.identity

    def authorize(self, action: str, environment: str | None = None, *, owner: str | None = None):
        """Raise AccessDenied (ledgered) unless the caller's role allows `action`."""
        self.access.check(action, environment, owner=owner)

    def privileged(self, action: str) -> Warehouse:
        """The store itself, for an operation that an action (not environment access) allows,
        e.g. retention rewriting versions: the action is checked (and a denial ledgered) first."""
        self.authorize(action)
        return self._store

    def connect(self, environment: str) -> duckdb.DuckDBPyConnection:
        """Read an environment as the caller may see it (masked views for restricted roles), for
        the platform's own reads; user SQL goes through `query()`."""
        return self.access.connect(environment)

    def guard_query(
        self,
        sql: str,
        allowed: set[str],
        *,
        dialect: str,
        environment: str | None = None,
        default_schema: str | None = None,
    ) -> CheckedQuery:
        """`sql` as one checked read-only SELECT over `allowed`; a refusal is ledgered."""
        try:
            from elt_platform.access.query_guard import check_select

            return check_select(sql, allowed, dialect=dialect, default_schema=default_schema)
        except QueryRefused as exc:
            message = exc.args[0]
            self.access.refuse(
                QUERY,
                environment,
                message.removeprefix("query refused: "),
                error=QueryRefused,
                message=message,
            )
            raise  # refuse() always raises; this keeps type checkers aware

    def query(self, environment: str, sql: str, *, limit: int | None = None) -> QueryResult:
        """Run a user's SQL on an environment's catalog, sandboxed: one read-only SELECT over the
        views the role may see, in a DuckDB session with external access off and its
        configuration locked (only the version files under the views are readable)."""
        env = environment_from_name(environment).name
        con = self.access.connect(env)  # read access; masked views for restricted roles
        try:
            views = {
                r[0].lower()
                for r in con.execute(f"SELECT relation FROM {META_SCHEMA}.pointers").fetchall()
            }
            checked = self.guard_query(
                sql, views, dialect="duckdb", environment=env, default_schema="main"
            )
            lock_down(con, [self._store.versions.versions_dir])
            try:
                cursor = con.execute(checked.sql)
                rows = cursor.fetchmany(limit) if limit else cursor.fetchall()
            except duckdb.PermissionException as exc:  # a guard gap the engine still closed
                reason = _first_line(exc)
                self.access.refuse(
                    QUERY, env, reason, error=QueryRefused, message=f"query refused: {reason}"
                )
                raise
            except duckdb.Error as exc:
                raise InvalidQuery(
                    f"query failed: {_first_line(exc)}",
                    hint=f"check table and column names (`elt env show {env}` lists the views)",
                ) from None
            from elt_platform.access.query_guard import QueryResult

            return QueryResult([d[0] for d in cursor.description or []], rows)
        finally:
            con.close()

    def verify_data(self, *, sample: float | None = None, seed: int = 0) -> DataReport:
        """Re-hash the content of every version a live environment or release uses (auditing:
        needs the read_ledger action; only hashes leave the files)."""
        self.authorize(Action.READ_LEDGER)
        return verify_data(self._store.meta, self._store.versions, sample=sample, seed=seed)

    def scratch_path(self, environment: str) -> Path:
        """dbt's scratch database of an environment: only its writers use it."""
        self.authorize(WRITE, environment)
        return self._store.scratch_path(environment)

    def resolve(self, environment: str) -> dict[str, Version]:
        """The versions an environment points at."""
        self.authorize(READ, environment)
        return self._store.resolve(environment)

    def commit_pointers(
        self, environment: str, versions: dict[str, Version], *, run_id: str | None
    ) -> None:
        """Make `versions` visible in a buildable environment at once; refresh its catalog."""
        if versions:
            self.authorize(WRITE, environment)
        self._store.commit_pointers(environment, versions, run_id=run_id, actor=self.identity.actor)

    def publish(self, source_environment: str, **kwargs) -> PublishResult:
        """Publish the source environment's pointers (or a subset) to prod as one release."""
        self.authorize(READ, source_environment)
        self.authorize(WRITE, PROD)
        return self._store.publish(source_environment, **kwargs)

    def publish_versions(self, candidate: dict[str, str], **kwargs) -> PublishResult:
        """Publish explicit asset -> version pointers over prod as one release (ledgered)."""
        self.authorize(WRITE, PROD)
        return self._store.publish_versions(candidate, **kwargs)

    def rollback(self, release_id: str, *, actor: str, run_id: str | None = None) -> PublishResult:
        """Point prod at an earlier release in one transaction (ledgered)."""
        self.authorize(WRITE, PROD)
        return self._store.rollback(release_id, actor=actor, run_id=run_id)


def lock_down(con: duckdb.DuckDBPyConnection, readable: list[Path]) -> None:
    """Sandbox a DuckDB session (order measured, see NOTES.md): only `readable` folders stay
    reachable, then external access goes off, then the configuration is locked."""
    listing = ", ".join("'" + str(p).rstrip("/").replace("'", "''") + "/'" for p in readable)
    con.execute(f"SET allowed_directories = [{listing}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def open_store(settings: Settings) -> Warehouse:
    """The store of an installation with sandbox masking, the code version and the ledger's
    anchor (and its key, when ELT_LEDGER_KEY is set) wired in."""
    return Warehouse(
        settings.warehouse_dir,
        sandbox_relations=sandbox_relation_sql,
        code_version=lambda: current_code_version(settings.dbt_project_dir).label,
        anchor=LedgerAnchor(settings.ledger_anchor_path, ledger_key),
        metadata=settings.metadata_url,
        objects=open_object_store(settings.versions_url),
    )


def open_warehouse(settings: Settings, identity: Identity | None = None) -> GovernedWarehouse:
    """The warehouse as `identity` (default: the caller's identity from the environment)."""
    return GovernedWarehouse(open_store(settings), settings, identity)
