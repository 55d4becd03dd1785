"""Dagster resources. The warehouse resource binds a run to the identity in its tags (a run
launched without them acts as the least-privileged role), resolves the step's environment and
holds the run's environment locks until teardown. Outside a run (a sensor or schedule
evaluation) it acts as the process: the daemon's ELT_USER/ELT_ROLE, else the default role."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from elt_platform.access.facade import GovernedWarehouse, open_warehouse
from elt_platform.access.identity import run_identity
from elt_platform.environments import Environment, environment_from_name, require_buildable
from elt_platform.errors import InvalidEnvironmentName, UnknownEnvironment
from elt_platform.orchestration.partitions import (
    PARTITION_TAG,
    resolve_environment,
    step_partition,
)
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
        # Before any step: Dagster itself fails a step whose partition does not exist (reading
        # upstream versions) with an internal error, so say what to do first.
        key = (self._run_tags or {}).get(PARTITION_TAG)
        if key:
            try:
                name = environment_from_name(key).name
            except InvalidEnvironmentName as exc:
                raise unregistered_partition(key, exc) from None
            # Existence only: whether the run's identity may read or write it is the step's
            # check (ledgered once, naming the identity).
            if not self.warehouse.environments.exists(name):
                raise unregistered_partition(key, UnknownEnvironment(f"no environment {name!r}"))

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
        try:
            env = require_buildable(resolve_environment(context))
        except InvalidEnvironmentName as exc:
            raise unregistered_partition(step_partition(context) or "", exc) from None
        self.warehouse.authorize("write", env.name)  # denied -> AccessDenied, ledgered
        try:
            self.warehouse.environments.get(env.name)
        except UnknownEnvironment as exc:
            raise unregistered_partition(env.name, exc) from None
        self.warehouse.locks.acquire(env.name, holder=f"run {context.run_id}")
        return env

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._warehouse is not None:
            self._warehouse.locks.release_all()


def unregistered_partition(key: str, exc: Exception) -> dg.Failure:
    """The failure of a step whose partition is not a registered environment (e.g. one typed
    into the UI's "create partition" box): say how to create it, before any work is done."""
    return dg.Failure(
        description=(
            f"partition {key!r} is not a registered environment ({exc.args[0]}); create the "
            f"sandbox first: `elt sandbox create {key} --owner you@example.com` or launch the "
            f"`create_sandbox` job with `name: {key}`, then materialize in it"
        ),
        allow_retries=False,
    )
