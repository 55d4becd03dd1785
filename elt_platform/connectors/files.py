"""File connector: a landing folder of Parquet, CSV or JSON Lines files matched by a glob."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from elt_platform.connectors.base import ExtractContext, Extraction
from elt_platform.errors import ConfigError, MissingSourceData
from elt_platform.store.versions import sql_literal

READERS = {
    "parquet": "read_parquet({files})",
    "csv": "read_csv({files}, header = true, auto_detect = true)",
    "jsonl": "read_json({files}, format = 'newline_delimited')",
}


@dataclass(frozen=True)
class FileConnector:
    name: str
    path: str
    format: str

    def __post_init__(self) -> None:
        if self.format not in READERS:
            raise ConfigError(
                f"source {self.name!r}: format must be one of {sorted(READERS)}, "
                f"got {self.format!r}"
            )
        if Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise ConfigError(f"source {self.name!r}: path must be relative to the sources folder")

    def files(self, sources_dir: Path) -> list[Path]:
        return sorted(p for p in sources_dir.glob(self.path) if p.is_file())

    def extract(self, con: duckdb.DuckDBPyConnection, ctx: ExtractContext) -> Extraction:
        files = self.files(ctx.sources_dir)
        if not files:
            raise MissingSourceData(
                f"source {self.name!r}: no files match {ctx.sources_dir / self.path}"
            )
        listing = "[" + ", ".join(sql_literal(str(f)) for f in files) + "]"
        select = f"SELECT * FROM {READERS[self.format].format(files=listing)}"
        return Extraction(
            select_sql=select,
            source_position={"files": [f.name for f in files], "file_count": len(files)},
        )
