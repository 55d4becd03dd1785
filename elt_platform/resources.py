"""Dagster resources. The warehouse resource holds the run's environment locks until teardown."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from elt_platform.environments import Environment, require_buildable, resolve_environment
from elt_platform.store.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Access to the versioned warehouse rooted at `root` (metadata, versions, catalogs)."""

    root: str

    _warehouse: Warehouse | None = PrivateAttr(default=None)
    _run_tags: dict = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The run's `elt/user` / `elt/role` tags are the identity its writes are checked against.
        run = context.dagster_run
        self._run_tags = dict(run.tags) if run is not None else {}

    @property
    def warehouse(self) -> Warehouse:
        if self._warehouse is None:
            from elt_platform.governance.access import identity_from_tags

            identity = identity_from_tags(self._run_tags)
            self._warehouse = Warehouse(Path(self.root), identity=identity)
        return self._warehouse

    def writable_environment(self, context: dg.AssetExecutionContext) -> Environment:
        """Resolve the step's environment, check it may be built, and lock it for this run."""
        env = require_buildable(resolve_environment(context))
        self.warehouse.environments.get(env.name)  # unknown environment -> clear error
        self.warehouse.authorize("write", env.name)  # denied -> AccessDenied, ledgered
        self.warehouse.locks.acquire(env.name, holder=f"run {context.run_id}")
        return env

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._warehouse is not None:
            self._warehouse.locks.release_all()
