"""The store facade: one object bundling the metadata store, versions, pointers, releases,
catalogs, ledger and locks of one installation. It knows nothing of policy: callers reach it
through the governed facade (`elt_platform.access.facade`), which checks who may do what."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path

from elt_platform.environments import PROD, environment_from_name
from elt_platform.errors import NothingToPublish
from elt_platform.store.anchor import LedgerAnchor
from elt_platform.store.builds import BuildStore
from elt_platform.store.catalog import CatalogStore, SandboxRelations
from elt_platform.store.ledger import Ledger, LedgerKind
from elt_platform.store.locks import EnvironmentLocks
from elt_platform.store.metadata import MetadataStore
from elt_platform.store.objects import ObjectStore
from elt_platform.store.pointers import EnvironmentRegistry
from elt_platform.store.releases import PublishResult, ReleaseStore, manifest_hash
from elt_platform.store.versions import Version, VersionStore


class Warehouse:
    """Versions, environments, releases, catalogs, ledger and locks under one `root`."""

    def __init__(
        self,
        root: Path,
        *,
        sandbox_relations: SandboxRelations | None = None,
        code_version: Callable[[], str | None] | None = None,
        anchor: LedgerAnchor | None = None,
        metadata: str | None = None,
        objects: ObjectStore | None = None,
    ) -> None:
        self.root = Path(root)
        # The metadata store's URL (PostgreSQL at scale); by default a SQLite file under root.
        self.meta = MetadataStore(metadata or self.root / "meta.sqlite")
        # An object store shared by several installations (versions_url), else the local disk.
        self.versions = VersionStore(self.root, self.meta, objects)
        self.builds = BuildStore(self.meta)
        self.environments = EnvironmentRegistry(self.meta)
        self.releases = ReleaseStore(self.meta)
        self.catalogs = CatalogStore(
            self.root / "catalogs",
            self.environments,
            self.versions,
            sandbox_relations=sandbox_relations,
        )
        self.locks = EnvironmentLocks(self.root / "locks", url=self.meta.url)
        self.ledger = Ledger(self.meta, code_version, anchor)
        self.environments.ensure_core()

    def scratch_path(self, environment: str) -> Path:
        """The per-environment DuckDB file dbt writes into (never shared between environments)."""
        env = environment_from_name(environment)
        path = self.root / "work" / env.name / "dbt.duckdb"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def resolve(self, environment: str) -> dict[str, Version]:
        """The versions an environment currently points at."""
        return {
            asset: self.versions.get(asset, vid)
            for asset, vid in self.environments.pointers(environment).items()
        }

    def commit_pointers(
        self,
        environment: str,
        versions: dict[str, Version],
        *,
        run_id: str | None,
        actor: str = "platform",
    ) -> None:
        """Make `versions` (and the builds that produced them) visible in a buildable environment
        at once, with the ledger entry that commits to the new state in the same transaction;
        refresh its catalog."""
        if not versions:
            return
        pointers = {a: v.version_id for a, v in versions.items()}
        self.environments.set_pointers(
            environment,
            pointers,
            run_id=run_id,
            builds={a: v.build_id for a, v in versions.items()},
            on_commit=lambda tx: self.ledger.append(
                LedgerKind.POINTERS_COMMITTED,
                actor=actor,
                environment=environment,
                run_id=run_id,
                assets=pointers,
                tx=tx,
            ),
        )
        self.ledger.write_anchor()
        self.catalogs.rebuild(environment)

    def publish(
        self,
        source_environment: str,
        *,
        triggered_by: str,
        assets: list[str] | None = None,
        code_version: str | None = None,
        gate_summary: dict | None = None,
        run_id: str | None = None,
    ) -> PublishResult:
        """Publish the source environment's pointers (or a subset) to prod as one release."""
        source = self.environments.pointers(source_environment)
        if assets is not None:
            missing = sorted(set(assets) - set(source))
            if missing:
                raise NothingToPublish(
                    f"{source_environment!r} has no version of {', '.join(missing)}"
                )
            source = {a: source[a] for a in assets}
        builds = self.environments.pointer_builds(source_environment)
        return self.publish_versions(
            source,
            builds={a: builds.get(a) for a in source},
            source_environment=source_environment,
            triggered_by=triggered_by,
            code_version=code_version,
            gate_summary=gate_summary,
            run_id=run_id,
        )

    def publish_versions(
        self,
        candidate: dict[str, str],
        *,
        source_environment: str,
        triggered_by: str,
        code_version: str | None = None,
        gate_summary: dict | None = None,
        run_id: str | None = None,
        builds: dict[str, str | None] | None = None,
    ) -> PublishResult:
        """Publish explicit asset -> version pointers (built by `builds`, else the newest build
        of each version) over prod as one release (ledgered)."""
        given = builds or {}
        builds = {a: given.get(a) or self._newest_build(a, v) for a, v in candidate.items()}
        result = self.releases.publish(
            candidate,
            builds=builds,
            source_environment=source_environment,
            triggered_by=triggered_by,
            code_version=code_version,
            gate_summary=gate_summary,
            run_id=run_id,
            on_commit=lambda tx, res: self._record_release(
                tx,
                LedgerKind.RELEASE_PUBLISHED,
                res,
                triggered_by,
                run_id,
                code_version,
                {"source_environment": source_environment, "gate_summary": gate_summary or {}},
            ),
        )
        return self._after_prod_move(result)

    def _newest_build(self, asset: str, version_id: str) -> str | None:
        found = self.builds.latest(asset, version_id)
        return found.build_id if found else None

    def rollback(self, release_id: str, *, actor: str, run_id: str | None = None) -> PublishResult:
        """Point prod at an earlier release in one transaction (ledgered)."""
        result = self.releases.rollback(
            release_id,
            actor=actor,
            run_id=run_id,
            on_commit=lambda tx, res: self._record_release(
                tx, LedgerKind.RELEASE_ROLLED_BACK, res, actor, run_id, None, {}
            ),
        )
        return self._after_prod_move(result)

    def _after_prod_move(self, result: PublishResult) -> PublishResult:
        """Anchor the ledger's head outside the store, then rebuild prod's catalog."""
        head = self.ledger.write_anchor()
        self.catalogs.rebuild(PROD)
        return dataclasses.replace(result, ledger_head=head)

    def _record_release(
        self,
        tx: sqlite3.Connection,
        kind: str,
        result: PublishResult,
        actor: str,
        run_id: str | None,
        code_version: str | None,
        params: dict,
    ) -> None:
        """Ledger entry for a prod pointer move, written in the same transaction as the move."""
        manifest = result.release.manifest
        self.ledger.append(
            kind,
            actor=actor,
            environment=PROD,
            run_id=run_id,
            code_version=code_version,
            params={
                "release_id": result.release.release_id,
                "previous_release": result.previous_release,
                "changed_assets": list(result.changed_assets),
                "manifest_hash": manifest_hash(manifest),
                **params,
            },
            assets={a: manifest[a] for a in result.changed_assets if a in manifest},
            tx=tx,
        )
