"""Retention, then a dedicated staging run that recomputes what was derived from the rewritten
versions (`elt governance retention`).

The run selects the dbt models downstream of every rewritten asset (and the rewritten models
themselves); raw assets and seeds are not selected, so they are read from the pointers retention
moved instead of being extracted or loaded again (which would bring expired rows back). The
planner recomputes exactly the builds retention marked stale and their downstream, through the
normal gates; prod follows by the normal promotion (`elt promote` or the sensor). A caller who
may not write staging (a steward) gets the report only: the stale marks make the next staging
build recompute the same models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from elt_platform.access.control import WRITE
from elt_platform.access.facade import GovernedWarehouse
from elt_platform.environments import STAGING
from elt_platform.governance.retention import RetentionReport, enforce_retention
from elt_platform.launch.runs import BuildOutcome, build_environment
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.project.lineage import LineageGraph, load_lineage
from elt_platform.project.manifest import load_manifest
from elt_platform.project.relationships import load_relationships


@dataclass
class RetentionRun:
    report: RetentionReport
    recompute: list[str] = field(default_factory=list)  # models downstream of rewritten versions
    outcome: BuildOutcome | None = None  # the recompute run, when one was launched
    not_launched: str | None = None  # why no recompute run was launched


def recompute_selection(graph: LineageGraph, models: set[str], rewritten: list[str]) -> list[str]:
    """dbt models (of `models`) equal to or downstream of a rewritten asset, seeds excluded."""
    found = set(rewritten) | {d for a in rewritten for d in graph.downstream_assets(a)}
    return sorted(a for a in found if a in models)


def enforce_and_recompute(
    wh: GovernedWarehouse,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    recompute: bool = True,
) -> RetentionRun:
    """Enforce retention with cascades, then (unless `recompute` is off) rebuild in staging what
    was derived from the rewritten versions, as `wh`'s identity."""
    settings = wh.settings
    graph = load_lineage(settings)
    report = enforce_retention(
        wh,
        contracts_for(settings),
        now=now,
        relationships=load_relationships(settings, graph),
        dry_run=dry_run,
    )
    manifest = load_manifest(prepare_manifest(load_dbt_project(settings)))
    models = {
        a for a, kind in manifest.materializations().items() if kind not in ("seed", "source")
    }
    run = RetentionRun(report, recompute_selection(graph, models, report.rewritten_assets))
    if dry_run or not run.recompute:
        return run
    if not recompute:
        run.not_launched = "recompute not requested; the next staging build recomputes them"
    elif (denied := wh.access.denial(WRITE, STAGING)) is not None:
        run.not_launched = f"{denied}; the next staging build recomputes them"
    else:
        run.outcome = build_environment(
            settings, STAGING, selection=run.recompute, tags=wh.access.identity.tags()
        )
    return run
