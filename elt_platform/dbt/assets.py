"""The dbt project as environment-partitioned assets, with the platform's gate checks attached.

This is `@dbt_assets` unrolled (dagster-dbt builds the same multi_asset) so that the contract and
volume gates run in the same step as dbt, the quality score lands in the materialization, and
tests dagster-dbt does not turn into checks (several parents, unit tests) are checks too.
"""

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_dbt.asset_utils import build_dbt_specs

from elt_platform.checks.gates import gate_check_specs
from elt_platform.dbt.dbt_tests import extra_gate_specs
from elt_platform.dbt.environment_run import RunObserver
from elt_platform.dbt.runner import run_dbt_build
from elt_platform.dbt.translator import EnvironmentDbtTranslator
from elt_platform.orchestration.column_metadata import ColumnAnnotator
from elt_platform.orchestration.partitions import environment_partitions
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.orchestration.run_metrics import RunMetrics
from elt_platform.orchestration.step_lineage import step_lineage
from elt_platform.project.contracts.model import Contract
from elt_platform.project.dbt_project import (
    TARGET_NAME,
    DbtProjectConfig,
    dbt_executable,
    prepare_manifest,
)
from elt_platform.project.manifest import load_manifest


def build_dbt_assets(
    cfg: DbtProjectConfig,
    contracts: dict[str, Contract] | None = None,
    observers: tuple[RunObserver, ...] = (),
) -> dg.AssetsDefinition:
    """One multi-asset for the whole project; `observers` react to each finished dbt run."""
    manifest = load_manifest(prepare_manifest(cfg))
    contracts = contracts or {}
    translator = EnvironmentDbtTranslator(contracts, manifest)
    specs, dbt_check_specs = build_dbt_specs(
        translator=translator,
        manifest=manifest.data,
        select="fqn:*",
        exclude="",
        selector="",
        io_manager_key=None,
        project=None,
    )
    gates = [
        c
        for s in specs
        if s.key.to_user_string() in contracts and contracts[s.key.to_user_string()].gated
        for c in gate_check_specs(s.key)
    ]
    # Tests dagster-dbt leaves out (several parents, unit tests) gate every asset they read.
    gates += extra_gate_specs(manifest, [s.key for s in specs])

    @dg.multi_asset(
        name="dbt_models",
        specs=specs,
        check_specs=[*dbt_check_specs, *gates],
        can_subset=True,
        partitions_def=environment_partitions,
        # No default dbt selection: every run passes exactly what to build and test
        # (`DbtRunSetup.dbt_args`), so models that keep their build are left alone.
        allow_arbitrary_check_specs=True,
    )
    def dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
    ):
        with step_lineage(context, warehouse) as lineage:  # OpenLineage START/COMPLETE/FAIL
            build = run_dbt_build(context, dbt, warehouse, cfg, manifest, contracts, observers)
            columns = ColumnAnnotator(warehouse.settings, lineage.lineage_graph, context.log)
            metrics = RunMetrics(context)
            for event in build:
                if isinstance(event, dg.Output):  # column tags, lineage and metrics for the UI
                    key = context.asset_key_for_output(event.output_name).to_user_string()
                    event = columns.annotate(event, key, context.partition_key)
                    event = metrics.annotate(event, key, contracts.get(key))
                lineage.observe(event)
                yield event

    return dbt_models


class PlatformDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without the in-process dbt adapter it opens before every command.

    dagster-dbt loads the profile, the project and every macro into this process (about 4 s of
    CPU on the demo) only so that `fetch_column_metadata`/`fetch_row_counts` can query the
    warehouse; the platform reads row counts and schemas from the versions it writes, so the
    run's dbt subprocess is the only dbt that needs to start.
    """

    def _initialize_dbt_core_adapter(self, args):  # noqa: ANN001, ANN202 (dagster-dbt's hook)
        return None


def build_dbt_resource(cfg: DbtProjectConfig) -> DbtCliResource:
    return PlatformDbtCliResource(
        project_dir=str(cfg.project_dir),
        profiles_dir=str(cfg.profiles_dir),
        target=TARGET_NAME,
        dbt_executable=dbt_executable("elt-dbt"),  # dagster-dbt asks `--version` every run
    )
