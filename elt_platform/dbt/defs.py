"""The dbt domain's Dagster definitions: the project's models, seeds and snapshots as one
environment-partitioned multi-asset with its tests as checks, and the dbt CLI resource."""

from __future__ import annotations

import dagster as dg

from elt_platform.dbt.assets import build_dbt_assets, build_dbt_resource
from elt_platform.dbt.environment_run import RunObserver
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.dbt_project import load_dbt_project
from elt_platform.settings import Settings


def defs(settings: Settings, observers: tuple[RunObserver, ...] = ()) -> dg.Definitions:
    """`observers` are told about every finished dbt run (e.g. sandboxes record experiments)."""
    cfg = load_dbt_project(settings)
    return dg.Definitions(
        assets=[build_dbt_assets(cfg, contracts_for(settings), observers)],
        resources={"dbt": build_dbt_resource(cfg)},
    )
