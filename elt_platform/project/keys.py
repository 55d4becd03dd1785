"""Primary keys used to match rows in a diff: the connector's `primary_key` for raw assets, and for
dbt models what the manifest reader finds (`meta.primary_key`, else a column tested `unique`)."""

from __future__ import annotations

from elt_platform.project.manifest import Manifest
from elt_platform.project.sources import SourceConfig


def source_keys(sources: list[SourceConfig]) -> dict[str, list[str]]:
    return {"/".join(s.asset_key): list(s.primary_key) for s in sources if s.primary_key}


def asset_keys_columns(sources: list[SourceConfig], manifest: Manifest) -> dict[str, list[str]]:
    """asset -> key columns, for every source and model that has one."""
    return {**source_keys(sources), **manifest.primary_keys()}
