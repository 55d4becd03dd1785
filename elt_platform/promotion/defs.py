"""The promotion domain's Dagster definitions: the `prod_release` asset (one materialization per
prod move), promote, rollback and GC jobs, the promotion sensor and the daily GC schedule."""

from __future__ import annotations

import dagster as dg

from elt_platform.promotion.jobs import (
    AssetGraphSource,
    build_promotion_jobs,
    build_promotion_schedules,
)
from elt_platform.promotion.release_asset import prod_release_spec
from elt_platform.promotion.sensor import build_promotion_sensor


def defs(asset_graph: AssetGraphSource) -> dg.Definitions:
    """`asset_graph` resolves the code location's asset graph (the one being promoted)."""
    jobs = build_promotion_jobs(asset_graph)
    return dg.Definitions(
        assets=[prod_release_spec],
        jobs=jobs,
        schedules=build_promotion_schedules(jobs),
        sensors=[build_promotion_sensor(asset_graph)],
    )
