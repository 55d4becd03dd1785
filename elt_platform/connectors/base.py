"""The connector contract: a connector reads what is new in its source into Parquet parts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb

from elt_platform.orchestration.dataset_names import DatasetName

# DuckDB COPY options for parts written by connectors: fast zstd, default row groups so that
# later scans can skip row groups by min/max statistics.
PART_COPY_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"


@dataclass(frozen=True)
class ExtractContext:
    """Where one extraction runs and the state of the version the environment points at."""

    source: str
    environment: str
    sources_dir: Path
    run_id: str
    work_dir: Path  # private folder on the warehouse filesystem; parts are written here
    state: dict[str, Any] = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("elt.connectors"))


@dataclass(frozen=True)
class SourcePart:
    """One Parquet file of extracted rows and how to name its origin in error messages."""

    path: Path
    label: str


@dataclass
class Batch:
    """What a connector extracted: parts (later parts win on equal keys) and the new state."""

    parts: list[SourcePart]
    state: dict[str, Any]
    position: dict[str, Any]
    source_schema: dict[str, str]
    bytes_read: int
    full_refresh: bool = False
    counters: dict[str, float] = field(default_factory=dict)  # numeric extras for metadata


class Connector(Protocol):
    kind: str
    name: str

    def extract(self, con: duckdb.DuckDBPyConnection, ctx: ExtractContext) -> Batch: ...

    def changed_since(self, sources_dir: Path, state: dict[str, Any]) -> str | None:
        """Why extracting from `state` (the environment's current one) could change the table,
        or None when it cannot: a cheap probe, never weaker than the extraction's own test."""
        ...

    def datasets(self, sources_dir: Path) -> list[DatasetName]:
        """The source datasets a run reads, named per the OpenLineage conventions."""
        ...
