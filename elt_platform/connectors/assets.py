"""Factory: one environment-partitioned raw asset per configured source."""


import time
from pathlib import Path

import dagster as dg
import duckdb

from elt_platform.connectors.base import Connector, ExtractContext
from elt_platform.connectors.config import SourceConfig
from elt_platform.connectors.files import FileConnector
from elt_platform.environments import environment_partitions
from elt_platform.resources import WarehouseResource
from elt_platform.versioning import version_metadata


def make_connector(source: SourceConfig) -> Connector:
    if source.connector == "files":
        return FileConnector(
            name=source.name,
            path=str(source.options.get("path", "")),
            format=str(source.options.get("format", "parquet")),
        )
    raise ValueError(f"unknown connector {source.connector!r}")  # guarded by config loading


def build_source_asset(source: SourceConfig, sources_dir: Path) -> dg.AssetsDefinition:
    connector = make_connector(source)

    @dg.asset(
        key=source.asset_key,
        partitions_def=environment_partitions,
        group_name="raw",
        kinds={"duckdb", "parquet", source.connector},
        owners=[source.owner],
        description=source.description or f"Raw {source.name} from the {source.connector} source.",
        code_version=source.fingerprint,
        tags={"elt/layer": "raw"},
        metadata={"connector": source.connector, "primary_key": ",".join(source.primary_key)},
    )
    def _raw_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        env = warehouse.writable_environment(context)
        wh = warehouse.warehouse
        started = time.perf_counter()
        con = duckdb.connect()
        try:
            extraction = connector.extract(
                con, ExtractContext(env.name, sources_dir, context.run_id)
            )
            version = wh.versions.write_query(
                con,
                "/".join(source.asset_key),
                extraction.select_sql,
                environment=env.name,
                run_id=context.run_id,
                code_version=source.fingerprint,
                params={"source": source.name, **extraction.source_position},
            )
        finally:
            con.close()
        wh.commit_pointers(env.name, {version.asset: version}, run_id=context.run_id)
        seconds = time.perf_counter() - started
        return dg.MaterializeResult(
            metadata={
                **version_metadata(version, env.name),
                "duration_seconds": round(seconds, 3),
                "rows_per_second": round(version.rows / seconds, 1) if seconds else 0.0,
                "source_position": extraction.source_position,
            },
            data_version=dg.DataVersion(version.version_id),
        )

    return _raw_asset
