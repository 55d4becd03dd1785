"""Primary keys used to match rows in a diff: sources.yaml `primary_key` for raw assets, and for
dbt models `meta.primary_key` or else a column with a `unique` test."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elt_platform.connectors.config import SourceConfig
from elt_platform.sandboxes.pii import dbt_asset_key


def source_keys(sources: list[SourceConfig]) -> dict[str, list[str]]:
    return {"/".join(s.asset_key): list(s.primary_key) for s in sources if s.primary_key}


def model_keys(manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """asset key -> key columns for every dbt model that declares or tests one."""
    nodes = manifest.get("nodes", {})
    unique_columns: dict[str, list[str]] = {}
    for node in nodes.values():
        meta = node.get("test_metadata") or {}
        if node.get("resource_type") != "test" or meta.get("name") != "unique":
            continue
        column = node.get("column_name") or (meta.get("kwargs") or {}).get("column_name")
        parent = node.get("attached_node")
        if column and parent and column.isidentifier():
            unique_columns.setdefault(parent, []).append(column)
    out: dict[str, list[str]] = {}
    for unique_id, node in nodes.items():
        if node.get("resource_type") not in {"model", "snapshot", "seed"}:
            continue
        meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
        declared = meta.get("primary_key")
        if isinstance(declared, str):
            declared = [c.strip() for c in declared.split(",") if c.strip()]
        if not declared and unique_id in unique_columns:
            order = list((node.get("columns") or {}).keys())
            candidates = unique_columns[unique_id]
            # Prefer an `_id` column, then the first in declaration order: surrogate keys first.
            candidates.sort(key=lambda c: (not c.endswith("_id"), _index(order, c)))
            declared = [candidates[0]]
        if declared:
            out[dbt_asset_key(node)] = list(declared)
    return out


def _index(order: list[str], column: str) -> int:
    return order.index(column) if column in order else len(order)
