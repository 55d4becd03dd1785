"""File connector: a landing folder of Parquet, CSV or JSON Lines files matched by a glob.

Incremental by content: every file is identified by its SHA-256 (computed on every run, never
trusted from name, size and mtime), so a file already loaded is never loaded twice even if renamed
or touched, and a file whose content changed is loaded again (its rows replace the old ones by
primary key). Parquet files become parts as they are (copied,
never re-encoded); CSV and JSON Lines are parsed by DuckDB into Parquet parts.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from elt_platform.connectors.base import PART_COPY_OPTIONS, Batch, ExtractContext, SourcePart
from elt_platform.connectors.merge import first_line
from elt_platform.errors import ConfigError, MissingSourceData, SourceDataError
from elt_platform.orchestration.dataset_names import DatasetName, file_dataset
from elt_platform.project.sources import SourceConfig, check_known_options, option
from elt_platform.sqlident import sql_literal
from elt_platform.store.checksums import file_sha256

FORMATS = ("parquet", "csv", "jsonl")
MODES = ("incremental", "full_refresh")
_OPTIONS = {"path", "format", "mode", "delimiter", "encoding", "columns"}


@dataclass(frozen=True)
class FileConnector:
    name: str
    path: str
    format: str
    mode: str = "incremental"
    delimiter: str = ","
    encoding: str = "utf-8"
    columns: tuple[tuple[str, str], ...] = ()  # declared column types (CSV / JSON Lines)
    kind: str = "files"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(
                f"source {self.name!r}: format must be one of {FORMATS}, got {self.format!r}"
            )
        if self.mode not in MODES:
            raise ConfigError(f"source {self.name!r}: mode must be one of {MODES}")
        if not self.path or Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise ConfigError(f"source {self.name!r}: path must be relative to the sources folder")
        if len(self.delimiter) != 1:
            raise ConfigError(f"source {self.name!r}: delimiter must be one character")

    @classmethod
    def from_source(cls, source: SourceConfig) -> FileConnector:
        check_known_options(source, _OPTIONS)
        columns = option(source, "columns", dict, {})
        return cls(
            name=source.name,
            path=option(source, "path", str, ""),
            format=option(source, "format", str, "parquet"),
            mode=option(source, "mode", str, "incremental"),
            delimiter=option(source, "delimiter", str, ","),
            encoding=option(source, "encoding", str, "utf-8"),
            columns=tuple((str(k), str(v)) for k, v in columns.items()),
        )

    def files(self, sources_dir: Path) -> list[Path]:
        return sorted(p for p in sources_dir.glob(self.path) if p.is_file())

    def datasets(self, sources_dir: Path) -> list[DatasetName]:
        """Every file the pattern matches: the version's rows come from all of them."""
        return [file_dataset(p) for p in self.files(sources_dir)]

    def changed_since(self, sources_dir: Path, state: dict[str, Any]) -> str | None:
        """Why an extraction from `state` could change the table, or None when every file the
        pattern matches has the name and content (SHA-256, not size or mtime) last recorded."""
        files = self.files(sources_dir)
        now = {p.relative_to(sources_dir).as_posix(): file_sha256(p) for p in files}
        recorded = recorded_files(state)
        if not now or now != recorded:
            names = now.keys() | recorded.keys()
            changed = sorted(n for n in names if now.get(n) != recorded.get(n))
            return f"files changed: {', '.join(changed[:3]) or 'none match'}"
        return None

    def extract(self, con: duckdb.DuckDBPyConnection, ctx: ExtractContext) -> Batch:
        files = self.files(ctx.sources_dir)
        if not files:
            raise MissingSourceData(
                f"source {self.name!r}: no files match {ctx.sources_dir / self.path}"
            )
        full = self.mode == "full_refresh"
        seen = {} if full else dict(ctx.state.get("files") or {})
        state: dict[str, dict[str, Any]] = {d: dict(e) for d, e in seen.items()}
        to_load: list[tuple[Path, str, str]] = []
        renamed, changed, skipped = [], [], 0
        for path in files:
            rel = path.relative_to(ctx.sources_dir).as_posix()
            stat = path.stat()
            # Always the content: a file rewritten with the same size and mtime is still new.
            digest = file_sha256(path)
            if digest in seen:
                skipped += 1
                if rel not in seen[digest]["names"]:
                    renamed.append(rel)
                state[digest]["names"] = {**state[digest]["names"], rel: stat.st_mtime_ns}
                continue
            if any(rel in e["names"] for e in seen.values()):
                changed.append(rel)
            for other in state.values():  # the name now holds other content
                other["names"] = {n: m for n, m in other["names"].items() if n != rel}
            state[digest] = {"names": {rel: stat.st_mtime_ns}, "size": stat.st_size}
            to_load.append((path, rel, digest))
        state = {d: e for d, e in state.items() if e["names"]}
        parts, schema = [], {}
        for i, (path, rel, _) in enumerate(to_load):
            part = SourcePart(ctx.work_dir / f"file-{i:05d}.parquet", rel)
            schema = self._convert(con, path, part) or schema
            parts.append(part)
        return Batch(
            parts=parts,
            state={"files": state},
            position={
                "files_total": len(files),
                "files_loaded": [rel for _, rel, _ in to_load],
                "files_changed": changed,
                "files_renamed_or_copied": renamed,
                "files_skipped": skipped,
            },
            source_schema=schema,
            bytes_read=sum(p.stat().st_size for p, _, _ in to_load),
            full_refresh=full,
            counters={"files_loaded": len(to_load), "files_skipped": skipped},
        )

    def _convert(
        self, con: duckdb.DuckDBPyConnection, path: Path, part: SourcePart
    ) -> dict[str, str]:
        """Write one source file as a Parquet part; return the file's schema as read."""
        if path.stat().st_size == 0:
            raise SourceDataError(f"source {self.name!r}: {part.label} is empty (0 bytes)")
        if self.format == "parquet":
            shutil.copyfile(path, part.path)  # a copy: the landing file may be rewritten later
            reader = f"read_parquet({sql_literal(str(part.path))})"
        elif self.format == "csv":
            self._check_header(path, part.label)
            self._check_complete(path, part.label)
            reader = self._csv_reader(path)
        else:
            reader = self._json_reader(path)
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
            if self.format != "parquet":
                con.execute(
                    f"COPY (SELECT * FROM {reader}) TO {sql_literal(str(part.path))}"
                    f" ({PART_COPY_OPTIONS})"
                )
        except duckdb.Error as exc:
            message = first_line(exc, part, SourcePart(path, part.label))
            raise SourceDataError(f"source {self.name!r}: {part.label}: {message}") from None
        return {r[0]: r[1] for r in described}

    def _check_header(self, path: Path, label: str) -> None:
        with path.open("rb") as fh:
            first = fh.readline(1 << 20)
        try:
            text = first.decode("utf-8-sig" if self.encoding == "utf-8" else self.encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise SourceDataError(
                f"source {self.name!r}: {label}, line 1 is not valid {self.encoding}: {exc}"
            ) from None
        header = next(csv.reader([text.rstrip("\r\n")], delimiter=self.delimiter), [])
        expected = [c for c, _ in self.columns]
        if expected and header != expected:
            extra = [c for c in header if c not in expected]
            missing = [c for c in expected if c not in header]
            detail = []
            if extra:
                detail.append(f"extra column(s) {', '.join(extra)}")
            if missing:
                detail.append(f"missing column(s) {', '.join(missing)}")
            hint = f" (is the delimiter {self.delimiter!r}?)" if len(header) == 1 else ""
            raise SourceDataError(
                f"source {self.name!r}: {label}, header has {len(header)} column(s), expected "
                f"{len(expected)}: {'; '.join(detail) or 'columns in another order'}{hint}"
            )

    def _check_complete(self, path: Path, label: str) -> None:
        """A CSV cut off mid-line (a truncated transfer, a writer that died) ends without a line
        ending: its last row would load as partial data, so the file is refused instead."""
        size = path.stat().st_size
        with path.open("rb") as fh:
            fh.seek(size - 1)
            if fh.read(1) in (b"\n", b"\r"):
                return
            fh.seek(0)
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 22), b""))
        raise SourceDataError(
            f"source {self.name!r}: {label}, line {lines + 1} (byte {size}) ends without a line "
            "ending: the file looks cut off mid-line",
            hint="deliver the complete file (a CSV must end with a newline); nothing was loaded",
        )

    def _csv_reader(self, path: Path) -> str:
        options = [
            "header = true",
            f"delim = {sql_literal(self.delimiter)}",
            "quote = '\"'",
            "escape = '\"'",
            "strict_mode = true",
            f"encoding = {sql_literal(self.encoding)}",
        ]
        if self.columns:
            options += ["auto_detect = false", f"columns = {_struct(self.columns)}"]
        return f"read_csv({sql_literal(str(path))}, {', '.join(options)})"

    def _json_reader(self, path: Path) -> str:
        columns = f", columns = {_struct(self.columns)}" if self.columns else ""
        return f"read_json({sql_literal(str(path))}, format = 'newline_delimited'{columns})"


def _struct(columns: tuple[tuple[str, str], ...]) -> str:
    return "{" + ", ".join(f"{sql_literal(c)}: {sql_literal(t)}" for c, t in columns) + "}"


def recorded_files(state: dict[str, Any]) -> dict[str, str]:
    """file name -> content hash, as the extraction that saved `state` found them."""
    return {
        name: digest
        for digest, entry in (state.get("files") or {}).items()
        for name in entry["names"]
    }
