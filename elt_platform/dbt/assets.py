"""The dbt project as environment-partitioned assets."""


import json

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from elt_platform.dbt.project import (
    TARGET_NAME,
    DbtProjectConfig,
    dbt_executable,
    prepare_manifest,
)
from elt_platform.dbt.runner import run_dbt_build
from elt_platform.dbt.translator import EnvironmentDbtTranslator
from elt_platform.environments import environment_partitions
from elt_platform.resources import WarehouseResource


def build_dbt_assets(cfg: DbtProjectConfig) -> dg.AssetsDefinition:
    manifest_path = prepare_manifest(cfg)
    manifest = json.loads(manifest_path.read_text())
    translator = EnvironmentDbtTranslator()

    @dbt_assets(
        manifest=manifest,
        dagster_dbt_translator=translator,
        partitions_def=environment_partitions,
        name="dbt_models",
        retry_policy=dg.RetryPolicy(max_retries=0),
    )
    def dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
    ):
        yield from run_dbt_build(context, dbt, warehouse, cfg, manifest, translator)

    return dbt_models


def build_dbt_resource(cfg: DbtProjectConfig) -> DbtCliResource:
    return DbtCliResource(
        project_dir=str(cfg.project_dir),
        profiles_dir=str(cfg.profiles_dir),
        target=TARGET_NAME,
        dbt_executable=dbt_executable(),
    )
