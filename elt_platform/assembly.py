"""Builds the Dagster Definitions from settings: sources, dbt project, jobs, sensors, resources."""

from __future__ import annotations

import dagster as dg

from elt_platform.audit.run_lineage import build_openlineage_sensors
from elt_platform.codeversion import current_code_version
from elt_platform.connectors.assets import build_source_asset
from elt_platform.connectors.config import load_sources
from elt_platform.contracts.loading import contracts_for
from elt_platform.dbt.assets import build_dbt_assets, build_dbt_resource
from elt_platform.dbt.project import load_dbt_project
from elt_platform.environments import environment_partitions
from elt_platform.governance.jobs import build_governance_jobs, build_governance_schedules
from elt_platform.partitions_sync import environment_partitions_sensor
from elt_platform.promotion.candidate import CODE_VERSION_TAG
from elt_platform.promotion.jobs import (
    PlatformView,
    build_promotion_jobs,
    build_promotion_schedules,
)
from elt_platform.promotion.sensor import build_promotion_sensor
from elt_platform.resources import WarehouseResource
from elt_platform.sandboxes.jobs import build_sandbox_jobs, build_sandbox_schedules
from elt_platform.settings import Settings, load_settings

BUILD_JOB = "build_environment"


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or load_settings()
    dbt_cfg = load_dbt_project(settings)
    contracts = contracts_for(settings.contracts_dir)
    raw_assets = [
        build_source_asset(s, settings.sources_dir, contracts.get(f"raw/{s.name}"))
        for s in load_sources(settings.sources_config)
    ]
    dbt_models = build_dbt_assets(dbt_cfg, contracts)
    build_job = dg.define_asset_job(
        BUILD_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=environment_partitions,
        description="Materialize assets in one environment (staging or a sandbox).",
        tags={CODE_VERSION_TAG: current_code_version().label},
    )
    sandbox_jobs = build_sandbox_jobs(settings)  # create_sandbox (launchpad) + prune_sandboxes
    holder: list[dg.Definitions] = []
    # Ops and sensors read the asset graph of these very definitions (execute_in_process gives ops
    # no repository), resolved lazily once the Definitions object exists.
    platform = PlatformView(
        lambda: holder[0].resolve_asset_graph(), settings.contracts_dir, settings
    )
    promotion_jobs = build_promotion_jobs(platform)
    governance_jobs = build_governance_jobs(settings)  # enforce_retention
    defs = dg.Definitions(
        assets=[*raw_assets, dbt_models],
        jobs=[build_job, *promotion_jobs, *sandbox_jobs, *governance_jobs],
        schedules=[
            *build_sandbox_schedules(sandbox_jobs),
            *build_promotion_schedules(promotion_jobs),
            *build_governance_schedules(governance_jobs),
        ],
        sensors=[
            environment_partitions_sensor,
            build_promotion_sensor(platform),
            *build_openlineage_sensors(settings),
        ],
        resources={
            "warehouse": WarehouseResource(root=str(settings.warehouse_dir)),
            "dbt": build_dbt_resource(dbt_cfg),
        },
        executor=dg.in_process_executor,
    )
    holder.append(defs)
    return defs
