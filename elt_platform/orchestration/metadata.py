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
