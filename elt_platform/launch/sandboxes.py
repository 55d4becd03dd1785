"""Build a sandbox from the command line: plan over every selected asset (raw sources included,
`launch/plans.py`), run only what changed as one Dagster run, and repoint the rest to their
release builds. With nothing to recompute, no run is launched and Dagster is never imported."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from elt_platform.access.facade import open_warehouse
from elt_platform.builds.planner import RebuildPlan
from elt_platform.errors import UnknownExperiment
from elt_platform.launch.plans import plan_build, plan_sandbox
from elt_platform.project.project_file import environment_config
from elt_platform.sandboxes.experiment import ExperimentStore
from elt_platform.settings import Settings

if TYPE_CHECKING:
    import dagster as dg

    from elt_platform.launch.runs import BuildOutcome

__all__ = ["SandboxBuild", "build_sandbox", "plan_build", "plan_sandbox"]


@dataclass
class SandboxBuild:
    plan: RebuildPlan
    outcome: BuildOutcome | None  # when a run was needed
    repointed: dict[str, str]


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
        # Start-up cost: Dagster and the Definitions (seconds) only when there is a run to launch.
        from elt_platform.launch.runs import build_environment

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
