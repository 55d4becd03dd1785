"""Factory: one environment-partitioned raw asset per configured source."""

from pathlib import Path

import dagster as dg

from elt_platform.checks.freshness import freshness_policy
from elt_platform.checks.gates import (
    evaluate_gates,
    gate_check_specs,
    score,
    to_check_result,
    to_outcome,
)
from elt_platform.connectors.load import LoadResult, load_source, make_connector
from elt_platform.errors import EltError, SourceUnavailable
from elt_platform.orchestration.column_metadata import ColumnAnnotator
from elt_platform.orchestration.metadata import version_metadata
from elt_platform.orchestration.partitions import environment_partitions
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.orchestration.run_metrics import RunMetrics
from elt_platform.orchestration.step_lineage import SourceInputs, step_lineage
from elt_platform.project.contracts.model import Contract
from elt_platform.project.sources import SourceConfig


def build_source_asset(
    source: SourceConfig, sources_dir: Path, contract: Contract | None = None
) -> dg.AssetsDefinition:
    connector = make_connector(source)  # configuration errors surface when definitions load
    key = dg.AssetKey(source.asset_key)
    gated = contract is not None and contract.gated  # the contract gate checks its rows
    retry_policy = dg.RetryPolicy(
        max_retries=source.retries.max_retries,
        delay=source.retries.delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )

    @dg.asset(
        key=source.asset_key,
        partitions_def=environment_partitions,
        group_name="raw",
        kinds={"duckdb", "parquet", source.connector},
        owners=[source.owner] if source.owner else [],
        description=source.description or f"Raw {source.name} from the {source.connector} source.",
        code_version=source.fingerprint,
        tags={"elt/layer": "raw"},
        metadata={"connector": source.connector, "primary_key": ",".join(source.primary_key)},
        retry_policy=retry_policy,
        check_specs=gate_check_specs(key) if gated else None,
        freshness_policy=freshness_policy(contract),
    )
    def _raw_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        def reads() -> SourceInputs:
            found = tuple(connector.datasets(sources_dir))
            return SourceInputs(found, source.primary_key, source.owner)

        with step_lineage(context, warehouse, sources=reads) as lineage:
            result = _load(context, warehouse)
            columns = ColumnAnnotator(warehouse.settings, lineage.lineage_graph, context.log)
            result = columns.annotate(result, source.asset, context.partition_key)
            result = RunMetrics(context).annotate(result, source.asset, contract)
            lineage.observe(result)
            return result

    def _load(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        try:
            env = warehouse.writable_environment(context)
            result = load_source(
                warehouse.warehouse,
                source,
                connector,
                env.name,
                sources_dir=sources_dir,
                run_id=context.run_id,
                log=context.log,
                contract=contract if gated else None,
                duckdb_config=warehouse.settings.duckdb_config(),
            )
        except SourceUnavailable as exc:
            if context.retry_number < source.retries.max_retries:
                raise  # transient: the RetryPolicy runs the step again
            raise dg.Failure(description=str(exc), allow_retries=False) from None  # say why
        except EltError as exc:
            # Bad input, bad credentials, missing table: retrying cannot help.
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        context.log.info(
            f"{source.name}: read {result.rows_read:,} rows, added {result.merge.rows_added:,},"
            f" replaced {result.merge.rows_replaced:,} -> version {result.version.version_id}"
        )
        checks = []
        if gated:
            outcomes = evaluate_gates(
                warehouse.warehouse, result.version, contract, warehouse.settings.duckdb_config()
            )
            checks = [to_check_result(key, o) for o in outcomes]
            if result.version.build_id:  # the gates belong to this build (promotion reads them)
                warehouse.warehouse.builds.record_checks(
                    result.version.build_id, [to_outcome(c) for c in checks]
                )
        return dg.MaterializeResult(
            metadata={
                **extraction_metadata(result),
                "quality_score": dg.MetadataValue.float(score(checks, result.version.rows)),
            },
            data_version=dg.DataVersion(result.version.version_id),
            check_results=checks,
        )

    return _raw_asset


def extraction_metadata(result: LoadResult) -> dict[str, object]:
    """Numeric values (plotted over time by the UI) plus the source position and schema."""
    merge, batch = result.merge, result.batch
    numbers = {
        "rows_read": result.rows_read,
        "rows_added": merge.rows_added,
        "rows_replaced": merge.rows_replaced,
        "rows_unchanged": merge.rows_unchanged,
        "rows_superseded": merge.rows_superseded,
        "bytes_read": batch.bytes_read,
        "parts_reused": merge.parts_reused,
        "parts_rewritten": merge.parts_rewritten,
    }
    ingest = {}
    if result.ingest is not None:
        split = result.ingest.split
        ingest = {
            "drift": result.ingest.drift.describe(),
            "drift_action": result.ingest.decision.action,
            "rows_quarantined": dg.MetadataValue.int(split.quarantined if split else 0),
        }
        if split is not None and split.reasons:
            ingest["quarantine_reasons"] = dg.MetadataValue.json(split.reasons)
    return {
        **version_metadata(result.version, result.environment),
        **ingest,
        **{k: dg.MetadataValue.int(int(v)) for k, v in numbers.items()},
        **{k: dg.MetadataValue.float(float(v)) for k, v in batch.counters.items()},
        "duration_seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        "rows_per_second": dg.MetadataValue.float(round(result.rows_per_second, 1)),
        "previous_version_id": result.previous.version_id if result.previous else "",
        "source_position": dg.MetadataValue.json(batch.position),
        "source_schema": dg.MetadataValue.json(batch.source_schema),
    }
