"""Plan a build of any environment from the command line, without Dagster: the same planner the
dbt step of every run calls (`builds/planner.py`), fed from the manifest and the configured sources
(`project/asset_graph.py`) instead of the Definitions, and told which runs failed from the outcomes
their launchers recorded. Only a run no launcher recorded (launched from the UI or the daemon)
is looked up in Dagster, which is then imported."""

from __future__ import annotations

from collections.abc import Iterable

from elt_platform.access.facade import GovernedWarehouse, open_warehouse
from elt_platform.builds.planner import (
    NonBreaking,
    RebuildPlan,
    model_var_values,
    plan_environment,
)
from elt_platform.environments import EnvironmentKind, environment_from_name
from elt_platform.errors import UnknownAsset, WriteNotAllowed
from elt_platform.project.asset_graph import project_assets
from elt_platform.project.dbt_project import DbtProjectConfig, load_dbt_project
from elt_platform.project.manifest import Manifest, load_manifest
from elt_platform.project.project_file import environment_config
from elt_platform.settings import Settings

# Final statuses (Dagster's names) whose builds are never reused.
FAILED_STATUSES = frozenset({"FAILURE", "CANCELED", "CANCELING"})


def failed_runs_of(settings: Settings, wh: GovernedWarehouse):
    """A `failed_runs` callback for the planner: recorded outcomes first, Dagster for the rest."""

    def failed(run_ids: Iterable[str]) -> set[str]:
        ids = {r for r in run_ids if r}
        known = wh.builds.run_outcomes(ids)
        out = {r for r, status in known.items() if status in FAILED_STATUSES}
        unknown = ids - set(known)
        if unknown:
            # Start-up cost: Dagster (~1 s of imports) only for runs no launcher recorded.
            from elt_platform.orchestration.instance import open_instance
            from elt_platform.orchestration.runs import failed_runs

            out |= failed_runs(open_instance(settings), unknown)
        return out

    return failed


def lazy_non_breaking(wh: GovernedWarehouse, cfg: DbtProjectConfig, manifest: Manifest):
    """The planner's non-breaking test, loaded when a plan first needs it."""
    loaded: list[NonBreaking] = []

    def check(*args) -> str | None:
        if not loaded:
            # Start-up cost: SQL parsing (sqlglot) only when a change's impact must be decided.
            from elt_platform.builds.non_breaking import non_breaking_check

            loaded.append(non_breaking_check(wh.versions, cfg, manifest))
        return loaded[0](*args)

    return check


def require_known(known: Iterable[str], selection: list[str] | None) -> None:
    """Refuse a `--select` value that names no asset, listing some that exist."""
    known = set(known)
    unknown = [s for s in selection or [] if s not in known]
    if unknown:
        shown = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")
        raise UnknownAsset(
            f"no asset {unknown[0]!r} to build (assets: {shown})",
            hint="pass asset keys as `elt env show staging` prints them, e.g. --select raw/orders",
        )


def plan_build(
    settings: Settings,
    name: str,
    selection: list[str] | None = None,
    *,
    include_sources: bool = False,
) -> RebuildPlan:
    """What a build of environment `name` would recompute, and why (nothing is written): the
    same planner the dbt step runs. In a sandbox every selected asset is planned (raw sources
    keep the release's versions unless their code changed); in staging the dbt models, plus the
    raw sources with `include_sources` (a caller that probed them: a source's content is not
    the planner's to judge, so the plan assumes they bring nothing new)."""
    env = environment_from_name(name)
    if env.is_prod:
        raise WriteNotAllowed(f"{env.name!r} is never built", hint="plan staging or a sandbox")
    wh = open_warehouse(settings)
    record = wh.environments.get(env.name)
    assets = project_assets(settings)
    require_known(assets.code_versions, selection)
    config = environment_config(settings, env.name, record.config)
    cfg = load_dbt_project(settings)
    manifest = load_manifest(cfg.manifest_path)
    wanted = selection or assets.keys
    if env.kind is not EnvironmentKind.SANDBOX and not include_sources:
        wanted = [a for a in wanted if a in manifest.node_names()]
    return plan_environment(
        wh,
        env.name,
        wanted,
        deps={a: assets.deps[a] for a in wanted},
        code_versions={a: assets.code_versions[a] for a in wanted},
        var_values=model_var_values(manifest, config.dbt_vars),
        failed_runs=failed_runs_of(settings, wh),
        non_breaking=lazy_non_breaking(wh, cfg, manifest),
    )


def plan_sandbox(settings: Settings, name: str, selection: list[str] | None = None) -> RebuildPlan:
    """What `build_sandbox` would rebuild, and why (nothing is written)."""
    env = environment_from_name(name)
    if env.kind is not EnvironmentKind.SANDBOX:
        raise WriteNotAllowed(
            f"{env.name!r} is not a sandbox", hint="use `elt build staging --plan` for staging"
        )
    return plan_build(settings, name, selection)
