"""Build staging from the command line. Every source is probed first, cheaply: file content
hashes, the digest of the rows a SQL source's look-back would re-read, one API request for
records after the cursor (each connector's `changed_since`). When no source changed and the
planner reuses every other asset, no run is launched and Dagster is never imported: nothing
would be recomputed and every pointer already names the build it would reuse. Otherwise one run
extracts the changed sources and recomputes what depends on them (the dbt step plans per model
as always); unchanged sources are not re-extracted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from elt_platform.access.facade import GovernedWarehouse, open_warehouse
from elt_platform.builds.planner import RebuildPlan
from elt_platform.connectors.load import make_connector
from elt_platform.connectors.state import ConnectorStateStore
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
        if not changed:
            return StagingBuild(plan, probes, _reused(wh, plan))
        deps = project_assets(settings).deps
        todo = _downstream(changed, {a: deps[a] for a in plan.decisions})
        # Start-up cost: Dagster and the Definitions (seconds) only when there is a run.
        from elt_platform.launch.runs import build_environment

        outcome = build_environment(settings, STAGING, selection=todo, tags=tags)
        return StagingBuild(plan, probes, outcome)
    finally:
        wh.locks.release_all()


def _downstream(changed: set[str], deps: Mapping[str, Iterable[str]]) -> list[str]:
    """`changed` and every asset that reads one of them, directly or not."""
    out = set(changed)
    grew = True
    while grew:
        grew = False
        for asset, parents in deps.items():
            if asset not in out and out.intersection(parents):
                out.add(asset)
                grew = True
    return sorted(out)


def _reused(wh: GovernedWarehouse, plan: RebuildPlan) -> BuildOutcome:
    """The outcome of a build that kept every asset's build: the versions staging serves."""
    assets = {}
    for asset, version_id in plan.reuse.items():
        build_id = plan.reuse_builds.get(asset)
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
