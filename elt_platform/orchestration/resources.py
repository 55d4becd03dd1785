"""Dagster resources. The warehouse resource binds a run to the identity in its tags (a run
launched without them acts as the least-privileged role), resolves the step's environment and
holds the run's environment locks until teardown. Outside a run (a sensor or schedule
evaluation) it acts as the process: the daemon's ELT_USER/ELT_ROLE, else the default role."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from elt_platform.access.facade import GovernedWarehouse, open_warehouse
from elt_platform.access.identity import run_identity
from elt_platform.environments import Environment, require_buildable
from elt_platform.orchestration.partitions import resolve_environment
from elt_platform.project.project_file import load_policies
from elt_platform.settings import Settings, load_settings


class WarehouseResource(dg.ConfigurableResource):
    """The governed warehouse of the installation whose settings are `environ` (the environment
    variables `Settings.to_environ()` gives; plain strings, as resource config must be)."""

    environ: dict[str, str]

    _warehouse: GovernedWarehouse | None = PrivateAttr(default=None)
    _run_tags: dict | None = PrivateAttr(default=None)  # None outside a run

    @classmethod
    def for_settings(cls, settings: Settings) -> WarehouseResource:
        return cls(environ=settings.to_environ())

    @property
    def settings(self) -> Settings:
        return load_settings(self.environ)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The run's `elt/user` / `elt/role` tags are the identity its writes are checked against.
        run = context.dagster_run
        self._run_tags = dict(run.tags) if run is not None else None

    @property
    def warehouse(self) -> GovernedWarehouse:
        if self._warehouse is None:
            settings = self.settings
            policies = load_policies(settings)
            in_run = self._run_tags is not None
            identity = run_identity(policies, self._run_tags) if in_run else None
            self._warehouse = open_warehouse(settings, identity)
        return self._warehouse

    def writable_environment(self, context: dg.AssetExecutionContext) -> Environment:
        """Resolve the step's environment, check it may be built, and lock it for this run."""
        env = require_buildable(resolve_environment(context))
        self.warehouse.authorize("write", env.name)  # denied -> AccessDenied, ledgered
        self.warehouse.environments.get(env.name)  # unknown environment -> clear error
        self.warehouse.locks.acquire(env.name, holder=f"run {context.run_id}")
        return env

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._warehouse is not None:
            self._warehouse.locks.release_all()
