"""The connector contract: turn a source into a SELECT that DuckDB can copy into a version."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb


@dataclass(frozen=True)
class ExtractContext:
    environment: str
    sources_dir: Path
    run_id: str


@dataclass(frozen=True)
class Extraction:
    """What a connector produced: a query over the source plus where it read from."""

    select_sql: str
    source_position: dict[str, Any] = field(default_factory=dict)


class Connector(Protocol):
    def extract(self, con: duckdb.DuckDBPyConnection, ctx: ExtractContext) -> Extraction: ...
