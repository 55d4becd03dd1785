"""Dagster metadata describing a committed version (numeric values are plotted by the UI)."""

from __future__ import annotations

import dagster as dg

from elt_platform.store.versions import Version


def version_metadata(version: Version, environment: str) -> dict[str, object]:
    return {
        "dagster/row_count": dg.MetadataValue.int(version.rows),
        "bytes": dg.MetadataValue.int(version.bytes),
        "version_id": version.version_id,
        "environment": environment,
        "version_reused": version.reused,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=n, type=t) for n, t in version.schema]
        ),
    }


def reused_materialization(
    version: Version, environment: str, origin: str
) -> dg.AssetMaterialization:
    """The record that `environment` serves an existing version it did not compute (a sandbox
    starting from a release): a materialization, because Dagster derives a partition's status
    from materializations only (an observation would leave it "Missing" although it has data)."""
    return dg.AssetMaterialization(
        asset_key=dg.AssetKey.from_user_string(version.asset),
        partition=environment,
        description=f"reused from {origin}, version {version.version_id} (no data written)",
        metadata={
            **version_metadata(version, environment),
            "rebuilt": False,
            "reused_from": f"{origin}, version {version.version_id}",
        },
        tags={"dagster/data_version": version.version_id},
    )
