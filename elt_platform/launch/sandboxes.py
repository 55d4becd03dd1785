"""Plan a build of any environment (the planner the build itself runs), and build a sandbox from
the command line: plan over every selected asset (raw sources included), run only what changed
as one Dagster run, and repoint the rest to their release builds."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import dagster as dg

from elt_platform.access.facade import open_warehouse
from elt_platform.builds.planner import RebuildPlan, model_var_values, plan_environment
from elt_platform.environments import EnvironmentKind, environment_from_name
from elt_platform.errors import UnknownAsset, UnknownExperiment, WriteNotAllowed
from elt_platform.launch.runs import BuildOutcome, build_environment, load_definitions
from elt_platform.orchestration.instance import open_instance
from elt_platform.orchestration.runs import failed_runs
from elt_platform.project.dbt_project import load_dbt_project
from elt_platform.project.manifest import load_manifest
from elt_platform.project.project_file import environment_config
from elt_platform.sandboxes.experiment import ExperimentStore
from elt_platform.settings import Settings


@dataclass
class SandboxBuild:
    plan: RebuildPlan
    outcome: BuildOutcome | None  # when a run was needed
    repointed: dict[str, str]


def plan_build(settings: Settings, name: str, selection: list[str] | None = None) -> RebuildPlan:
    """What a build of environment `name` would recompute, and why (nothing is written): the
    same planner the dbt step runs. In a sandbox every selected asset is planned (raw sources
    keep the release's versions unless their code changed); in staging the dbt models (sources
    are extracted again on every staging build; the plan assumes they bring nothing new)."""
    env = environment_from_name(name)
    if env.is_prod:
        raise WriteNotAllowed(f"{env.name!r} is never built", hint="plan staging or a sandbox")
    wh = open_warehouse(settings)
    record = wh.environments.get(env.name)
    graph = load_definitions(settings).resolve_asset_graph()
    every = {k.to_user_string(): k for k in graph.materializable_asset_keys}
    unknown = [a for a in selection or [] if a not in every]
    if unknown:
        raise UnknownAsset(f"no asset {unknown[0]!r} in this project")
    config = environment_config(settings, env.name, record.config)
    manifest = load_manifest(load_dbt_project(settings).manifest_path)
    wanted = selection or sorted(every)
    if env.kind is not EnvironmentKind.SANDBOX:
        wanted = [a for a in wanted if a in manifest.node_names()]
    instance = open_instance(settings)
    return plan_environment(
        wh,
        env.name,
        wanted,
        deps={a: [p.to_user_string() for p in graph.get(every[a]).parent_keys] for a in wanted},
        code_versions={a: graph.get(every[a]).code_version for a in wanted},
        var_values=model_var_values(manifest, config.dbt_vars),
        failed_runs=lambda run_ids: failed_runs(instance, run_ids),
    )


def plan_sandbox(settings: Settings, name: str, selection: list[str] | None = None) -> RebuildPlan:
    """What `build_sandbox` would rebuild, and why (nothing is written)."""
    env = environment_from_name(name)
    if env.kind is not EnvironmentKind.SANDBOX:
        raise WriteNotAllowed(
            f"{env.name!r} is not a sandbox", hint="use `elt build staging --plan` for staging"
        )
    return plan_build(settings, name, selection)


def build_sandbox(
    settings: Settings,
    name: str,
    selection: list[str] | None = None,
    *,
    instance: dg.DagsterInstance | None = None,
) -> SandboxBuild:
    """Rebuild what the plan says as one recorded run; point unchanged assets at the versions
    they resolve to (normally the release's)."""

    plan = plan_sandbox(settings, name, selection)
    wh = open_warehouse(settings)
    current = wh.environments.pointers(name)
    repoint = {a: v for a, v in plan.reuse.items() if current.get(a) != v}
    if repoint:
        wh.locks.acquire(name, holder="elt sandbox build")
        try:
            builds = plan.reuse_builds
            wh.commit_pointers(
                name,
                {a: wh.versions.get(a, v, build_id=builds.get(a)) for a, v in repoint.items()},
                run_id=None,
            )
        finally:
            wh.locks.release_all()
    outcome = None
    if plan.rebuild:
        record = wh.environments.get(name)
        tags = environment_config(settings, name, record.config).tags()
        outcome = build_environment(
            settings, name, selection=plan.rebuild, instance=instance, tags=tags
        )
    record = wh.environments.get(name)
    base = wh.releases.get(record.base_release).manifest if record.base_release else {}
    outputs = {a: v for a, v in wh.environments.pointers(name).items() if base.get(a) != v}
    with contextlib.suppress(UnknownExperiment):
        ExperimentStore(wh.root, wh.meta).update(name, lambda r: r.update(outputs=outputs))
    return SandboxBuild(plan, outcome, repoint)
