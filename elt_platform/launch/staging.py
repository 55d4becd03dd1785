"""Build staging from the command line. Every source is probed first, cheaply: file content
hashes, the digest of the rows a SQL source's look-back would re-read, one API request for
records after the cursor (each connector's `changed_since`). When no source changed and the
planner reuses every other asset, no run is launched and Dagster is never imported: nothing
would be recomputed and every pointer already names the build it would reuse. Otherwise one run
extracts the changed sources and recomputes what depends on them (the dbt step plans per model
as always); unchanged sources are not re-extracted, and every asset the run did not select is
recorded as a build of that run reusing the one staging served (as the dbt step records the
models it reuses), so the release candidate is the work of one run and one code version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from elt_platform.access.facade import GovernedWarehouse, open_warehouse
from elt_platform.builds.planner import RebuildPlan
from elt_platform.connectors.load import make_connector
from elt_platform.connectors.state import ConnectorStateStore
from elt_platform.graphs import children_of, closure
from elt_platform.launch.outcomes import AssetOutcome, BuildOutcome
from elt_platform.launch.plans import plan_build
from elt_platform.project.asset_graph import project_assets
from elt_platform.project.contracts.from_dbt import load_sources
from elt_platform.settings import Settings

STAGING = "staging"


@dataclass(frozen=True)
class StagingBuild:
    plan: RebuildPlan
    probes: dict[str, str | None]  # source asset -> why it is extracted (None: unchanged)
    outcome: BuildOutcome  # run_id None: nothing changed, no run


def probe_sources(
    settings: Settings, wh: GovernedWarehouse, environment: str, assets: Iterable[str]
) -> dict[str, str | None]:
    """source asset -> why extracting it could change the table, or None when it cannot (the
    connector's probe against the state recorded with the version `environment` serves)."""
    sources = {s.asset: s for s in load_sources(settings)}
    pointers = wh.environments.pointers(environment)
    states = ConnectorStateStore(wh.meta)
    out: dict[str, str | None] = {}
    for asset in assets:
        source = sources.get(asset)
        if source is None:
            continue
        saved = states.get(asset, pointers[asset]) if asset in pointers else None
        if saved is None:
            out[asset] = "no extraction recorded for the version served"
            continue
        out[asset] = make_connector(source).changed_since(settings.sources_dir, saved.state)
    return out


def build_staging(
    settings: Settings, selection: list[str] | None = None, *, tags: dict[str, str] | None = None
) -> StagingBuild:
    """Build (a selection of) staging, extracting only changed sources; no run when nothing
    changed. The environment's write lock is held throughout (a busy staging is refused)."""
    wh = open_warehouse(settings)
    wh.locks.acquire(
        STAGING, holder=f"a build of {STAGING} ({wh.identity.actor})", share_in_process=True
    )
    try:
        plan = plan_build(settings, STAGING, selection, include_sources=True)
        probes = probe_sources(settings, wh, STAGING, plan.decisions)
        changed = {a for a, why in probes.items() if why} | set(plan.rebuild)
        if changed:
            deps = project_assets(settings).deps
            todo = _downstream(changed, {a: deps[a] for a in plan.decisions})
        elif _served_by_one_run(wh, plan):
            return StagingBuild(plan, probes, _reused(wh, plan))
        else:
            # Nothing changed, but staging serves the work of several runs (a partial
            # `--select` build, a retention rewrite): one run re-adopts every build (the dbt
            # step reuses the models, sources are not re-extracted).
            todo = [a for a in plan.decisions if a not in probes] or list(plan.decisions)
        # Start-up cost: Dagster and the Definitions (seconds) only when there is a run.
        from elt_platform.launch.runs import build_environment

        outcome = build_environment(settings, STAGING, selection=todo, tags=tags)
        if outcome.success and outcome.run_id:
            kept = [a for a in plan.reuse_builds if a not in todo]
            _adopt(wh, plan, kept, outcome.run_id)
            outcome.assets = {**_reused(wh, plan, kept).assets, **outcome.assets}
        return StagingBuild(plan, probes, outcome)
    finally:
        wh.locks.release_all()


def _downstream(changed: set[str], deps: Mapping[str, Iterable[str]]) -> list[str]:
    """`changed` and every asset that reads one of them, directly or not."""
    children = children_of(deps)
    return sorted(closure(changed, lambda asset: children.get(asset, ())))


def _served_by_one_run(wh: GovernedWarehouse, plan: RebuildPlan) -> bool:
    """Whether one run recorded every build the plan keeps (what a promotion requires)."""
    builds = wh.builds.many(plan.reuse_builds.values())
    runs = {builds[b].run_id if b in builds else None for b in plan.reuse_builds.values()}
    return len(plan.reuse_builds) == len(plan.decisions) and len(runs) == 1 and None not in runs


def _adopt(wh: GovernedWarehouse, plan: RebuildPlan, assets: list[str], run_id: str) -> None:
    """Record `assets` (kept, not selected by the run) as builds of `run_id` reusing the builds
    staging served, and serve those: same versions, checks carried over."""
    builds = wh.builds.many(plan.reuse_builds[a] for a in assets)
    versions = {}
    for asset in assets:
        reused = wh.builds.reuse(
            builds[plan.reuse_builds[asset]], environment=STAGING, run_id=run_id
        )
        versions[asset] = wh.versions.get(asset, reused.version_id, build_id=reused.build_id)
    wh.commit_pointers(STAGING, versions, run_id=run_id)


def _reused(
    wh: GovernedWarehouse, plan: RebuildPlan, only: Iterable[str] | None = None
) -> BuildOutcome:
    """The outcome of keeping assets' builds (all the plan keeps, or `only`): the versions
    staging serves."""
    assets = {}
    served = wh.environments.pointer_builds(STAGING)
    for asset, version_id in plan.reuse.items():
        if only is not None and asset not in only:
            continue
        build_id = served.get(asset) or plan.reuse_builds.get(asset)
        checks = list(wh.builds.checks(build_id).values()) if build_id else []
        assets[asset] = AssetOutcome(
            asset,
            rows=wh.versions.get(asset, version_id).rows,
            version_id=version_id,
            checks_passed=sum(c.status == "passed" for c in checks),
            checks_failed=sum(c.status == "failed" for c in checks),
            recomputed=False,
        )
    return BuildOutcome(STAGING, None, True, assets)
