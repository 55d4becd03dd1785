"""Merge extracted parts into a new version: raw tables are append-only by primary key.

Rows of the batch whose key is new are appended; a row whose key is already loaded replaces the
old row if its content differs and is dropped if identical (look-back re-reads, replayed pages).
Within a batch, identical repeats of a row collapse into one, but two different rows with the
same key are a conflict nothing can resolve: the load fails naming them (a contract under the
`quarantine` drift policy diverts such rows before they get here). Previous parts that no key
touches are reused (hard-linked), so an incremental version costs O(new data), and the content id
does not depend on how rows are split into parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from elt_platform.connectors.base import PART_COPY_OPTIONS, SourcePart
from elt_platform.errors import ConfigError, SourceDataError
from elt_platform.sqlident import quote_ident, sql_literal
from elt_platform.store.parts import parquet_schema
from elt_platform.store.versions import Version, VersionStore

Schema = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MergeStats:
    rows_added: int = 0
    rows_replaced: int = 0  # loaded rows replaced by a changed row with the same key
    rows_unchanged: int = 0  # re-read rows identical to loaded ones (dropped)
    rows_superseded: int = 0  # identical repeats of a row within the batch (collapsed)
    parts_reused: int = 0
    parts_rewritten: int = 0


def merge_batch(
    con: duckdb.DuckDBPyConnection,
    store: VersionStore,
    asset: str,
    source: str,
    previous: Version | None,
    parts: Sequence[SourcePart],
    primary_key: Sequence[str],
    *,
    full_refresh: bool,
    work_dir: Path,
    record: dict,
    allow_additive: bool = False,
) -> tuple[Version, MergeStats]:
    """Commit the version `previous + parts` (or `parts` alone for a full refresh).

    With `allow_additive` (a contract under `evolve` accepted the drift), parts may bring new
    columns: the table is then rewritten once with them (NULL for older rows).
    """
    base = None if full_refresh else previous
    old_parts = store.part_files(base) if base else []
    if not parts:
        if base is None:
            raise SourceDataError(f"source {source!r}: nothing was extracted and nothing is loaded")
        version = store.commit_parts(con, asset, [], old_parts, **record)
        return version, MergeStats(parts_reused=len(old_parts))
    expected = base.schema if base else _schema(con, source, parts[0])
    schemas = [_schema(con, source, part) for part in parts]
    widened = any(sch != expected for sch in schemas) and all(
        set(expected) <= set(sch) for sch in schemas
    )
    if allow_additive and widened:
        return _rewrite_evolved(con, store, asset, parts, old_parts, primary_key, work_dir, record)
    for part, actual in zip(parts, schemas, strict=True):
        _check_schema(source, part, actual, expected)
    names = [c for c, _ in expected]
    missing_key = [c for c in primary_key if c not in names]
    if missing_key:
        raise ConfigError(f"source {source!r}: primary key column(s) {missing_key} not in {names}")
    new_paths = [p.path for p in parts]
    if not primary_key:
        rows = sum(_count(con, [p]) for p in new_paths)  # before commit moves the parts
        version = store.commit_parts(con, asset, new_paths, old_parts, **record)
        return version, MergeStats(rows_added=rows, parts_reused=len(old_parts))
    key = ", ".join(quote_ident(c) for c in primary_key)
    new_scan = f"read_parquet({_listing(new_paths)})"
    null_key = " OR ".join(f"{quote_ident(c)} IS NULL" for c in primary_key)
    nulls, duplicates, total = con.execute(
        f"SELECT count(*) FILTER (WHERE {null_key}),"
        f" count(*) - count(DISTINCT ({key})), count(*) FROM {new_scan}"
    ).fetchone()
    if nulls:
        _raise_null_key(con, source, parts, primary_key)
    if duplicates:
        _raise_conflicting_keys(con, source, parts, names, primary_key)
    overlap = 0
    if old_parts:
        overlap = con.execute(
            f"SELECT count(*) FROM (SELECT {key} FROM read_parquet({_listing(old_parts)}))"
            f" SEMI JOIN (SELECT {key} FROM {new_scan}) USING ({key})"
        ).fetchone()[0]
    if not duplicates and not overlap:
        version = store.commit_parts(con, asset, new_paths, old_parts, **record)
        return version, MergeStats(rows_added=int(total), parts_reused=len(old_parts))
    return _merge_with_overlap(
        con, store, asset, parts, old_parts, names, primary_key, work_dir, record
    )


def _merge_with_overlap(
    con: duckdb.DuckDBPyConnection,
    store: VersionStore,
    asset: str,
    parts: Sequence[SourcePart],
    old_parts: list[Path],
    names: list[str],
    primary_key: Sequence[str],
    work_dir: Path,
    record: dict,
) -> tuple[Version, MergeStats]:
    key = ", ".join(quote_ident(c) for c in primary_key)
    on = " AND ".join(f"o.{quote_ident(c)} = w.{quote_ident(c)}" for c in primary_key)
    row = "{" + ", ".join(f"{sql_literal(c)}: {quote_ident(c)}" for c in names) + "}"
    new_list = _listing([p.path for p in parts])
    con.execute(
        f"CREATE OR REPLACE TABLE _elt_new AS SELECT {key}, hash({row}) AS _elt_h,"
        f" list_position({new_list}, _elt_f) AS _elt_part, file_row_number AS _elt_rn"
        f" FROM read_parquet({new_list}, filename = '_elt_f', file_row_number = true)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE _elt_win AS SELECT * FROM _elt_new QUALIFY row_number()"
        f" OVER (PARTITION BY {key} ORDER BY _elt_part DESC, _elt_rn DESC) = 1"
    )
    if old_parts:
        con.execute(
            f"CREATE OR REPLACE TABLE _elt_old AS SELECT {key}, hash({row}) AS _elt_h, _elt_f"
            f" FROM read_parquet({_listing(old_parts)}, filename = '_elt_f')"
            f" SEMI JOIN _elt_win USING ({key})"
        )
    else:
        con.execute(
            f"CREATE OR REPLACE TABLE _elt_old AS SELECT {key}, _elt_h, '' AS _elt_f"
            " FROM _elt_win WHERE false"
        )
    con.execute(
        "CREATE OR REPLACE TABLE _elt_keep AS SELECT w._elt_part, w._elt_rn,"
        f" EXISTS (SELECT 1 FROM _elt_old o WHERE {on}) AS _elt_replaces FROM _elt_win w"
        f" WHERE NOT EXISTS (SELECT 1 FROM _elt_old o WHERE {on} AND o._elt_h = w._elt_h)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE _elt_drop AS SELECT o.* FROM _elt_old o"
        f" JOIN _elt_win w ON {on} WHERE o._elt_h <> w._elt_h"
    )
    n_new, n_win, n_keep, n_replaces = con.execute(
        "SELECT (SELECT count(*) FROM _elt_new), (SELECT count(*) FROM _elt_win),"
        " (SELECT count(*) FROM _elt_keep), (SELECT count(*) FROM _elt_keep WHERE _elt_replaces)"
    ).fetchone()
    totals = dict(con.execute("SELECT _elt_part, count(*) FROM _elt_new GROUP BY 1").fetchall())
    kept = dict(con.execute("SELECT _elt_part, count(*) FROM _elt_keep GROUP BY 1").fetchall())
    new_parts: list[Path] = []
    rewritten = 0
    for i, part in enumerate(parts, start=1):
        if kept.get(i, 0) == totals.get(i, 0):
            new_parts.append(part.path)
        elif kept.get(i, 0):
            out = work_dir / f"kept-{i:05d}.parquet"
            con.execute(
                "COPY (SELECT * EXCLUDE (file_row_number) FROM read_parquet("
                f"{sql_literal(str(part.path))}, file_row_number = true) WHERE file_row_number IN"
                f" (SELECT _elt_rn FROM _elt_keep WHERE _elt_part = {i}))"
                f" TO {sql_literal(str(out))} ({PART_COPY_OPTIONS})"
            )
            new_parts.append(out)
            rewritten += 1
    touched = {r[0] for r in con.execute("SELECT DISTINCT _elt_f FROM _elt_drop").fetchall()}
    reused = [p for p in old_parts if str(p) not in touched]
    for j, old in enumerate(p for p in old_parts if str(p) in touched):
        out = work_dir / f"old-{j:05d}.parquet"
        con.execute(
            f"COPY (SELECT * EXCLUDE (_elt_h) FROM (SELECT *, hash({row}) AS _elt_h FROM"
            f" read_parquet({sql_literal(str(old))})) ANTI JOIN (SELECT {key}, _elt_h FROM"
            f" _elt_drop WHERE _elt_f = {sql_literal(str(old))}) USING ({key}, _elt_h))"
            f" TO {sql_literal(str(out))} ({PART_COPY_OPTIONS})"
        )
        new_parts.append(out)
        rewritten += 1
    if not new_parts and not reused:
        new_parts.append(parts[0].path)  # every row dropped: keep the schema with an empty part
        _truncate(con, parts[0].path, work_dir)
    version = store.commit_parts(con, asset, new_parts, reused, **record)
    con.execute(
        "DROP TABLE IF EXISTS _elt_new; DROP TABLE IF EXISTS _elt_win;"
        " DROP TABLE IF EXISTS _elt_old; DROP TABLE IF EXISTS _elt_keep;"
        " DROP TABLE IF EXISTS _elt_drop"
    )
    return version, MergeStats(
        rows_added=int(n_keep - n_replaces),
        rows_replaced=int(n_replaces),
        rows_unchanged=int(n_win - n_keep),
        rows_superseded=int(n_new - n_win),
        parts_reused=len(reused),
        parts_rewritten=rewritten,
    )


def _truncate(con: duckdb.DuckDBPyConnection, path: Path, work_dir: Path) -> None:
    tmp = work_dir / f"empty-{path.name}"
    con.execute(
        f"COPY (SELECT * FROM read_parquet({sql_literal(str(path))}) LIMIT 0)"
        f" TO {sql_literal(str(tmp))} ({PART_COPY_OPTIONS})"
    )
    tmp.replace(path)


def _rewrite_evolved(
    con: duckdb.DuckDBPyConnection,
    store: VersionStore,
    asset: str,
    parts: Sequence[SourcePart],
    old_parts: list[Path],
    primary_key: Sequence[str],
    work_dir: Path,
    record: dict,
) -> tuple[Version, MergeStats]:
    """One new part holding old and new rows under the widened column set; later rows win."""
    paths = [*old_parts, *(p.path for p in parts)]
    order = " ".join(f"WHEN {sql_literal(str(p))} THEN {i}" for i, p in enumerate(paths))
    scan = f"read_parquet({_listing(paths)}, union_by_name = true, filename = true)"
    ranked = f"SELECT *, CASE filename {order} END AS _elt_order FROM {scan}"
    if primary_key:
        key = ", ".join(quote_ident(c) for c in primary_key)
        ranked = (
            f"SELECT * FROM ({ranked}) QUALIFY row_number() OVER "
            f"(PARTITION BY {key} ORDER BY _elt_order DESC) = 1"
        )
    target = work_dir / "evolved.parquet"
    con.execute(
        f"COPY (SELECT * EXCLUDE (filename, _elt_order) FROM ({ranked})) "
        f"TO {sql_literal(str(target))} ({PART_COPY_OPTIONS})"
    )
    rows = _count(con, [target])  # before commit_parts moves the file into the store
    version = store.commit_parts(con, asset, [target], [], **record)
    return version, MergeStats(rows_added=rows, parts_rewritten=len(old_parts))


def _listing(paths: Sequence[Path]) -> str:
    return "[" + ", ".join(sql_literal(str(p)) for p in paths) + "]"


def _count(con: duckdb.DuckDBPyConnection, paths: Sequence[Path]) -> int:
    return int(con.execute(f"SELECT count(*) FROM read_parquet({_listing(paths)})").fetchone()[0])


def _schema(con: duckdb.DuckDBPyConnection, source: str, part: SourcePart) -> Schema:
    try:
        return parquet_schema(con, part.path)
    except duckdb.Error as exc:
        raise SourceDataError(
            f"source {source!r}: cannot read {part.label}: {first_line(exc, part)}"
        ) from None


def _check_schema(source: str, part: SourcePart, actual: Schema, expected: Schema) -> None:
    if actual == expected:
        return
    have, want = dict(actual), dict(expected)
    problems = []
    if extra := [c for c in have if c not in want]:
        problems.append(f"extra column(s) {', '.join(extra)}")
    if missing := [c for c in want if c not in have]:
        problems.append(f"missing column(s) {', '.join(missing)}")
    problems += [
        f"{c} is {have[c]}, expected {want[c]}" for c in want if c in have and have[c] != want[c]
    ]
    if not problems:
        problems.append(f"columns are in another order: {', '.join(have)}")
    raise SourceDataError(
        f"source {source!r}: {part.label} does not match the table's columns: "
        + "; ".join(problems)
    )


def _raise_null_key(
    con: duckdb.DuckDBPyConnection,
    source: str,
    parts: Sequence[SourcePart],
    primary_key: Sequence[str],
) -> None:
    condition = " OR ".join(f"{quote_ident(c)} IS NULL" for c in primary_key)
    for part in parts:
        hit = con.execute(
            f"SELECT file_row_number FROM read_parquet({sql_literal(str(part.path))},"
            f" file_row_number = true) WHERE {condition} ORDER BY 1 LIMIT 1"
        ).fetchone()
        if hit is not None:
            raise SourceDataError(
                f"source {source!r}: {part.label}, record {hit[0] + 1}: primary key "
                f"({', '.join(primary_key)}) is empty"
            )


def _raise_conflicting_keys(
    con: duckdb.DuckDBPyConnection,
    source: str,
    parts: Sequence[SourcePart],
    names: list[str],
    primary_key: Sequence[str],
) -> None:
    """Refuse a batch holding two different rows with one key: keeping either would silently
    drop the other (identical repeats are harmless and collapse later)."""
    key = ", ".join(quote_ident(c) for c in primary_key)
    row = "{" + ", ".join(f"{sql_literal(c)}: {quote_ident(c)}" for c in names) + "}"
    listing = _listing([p.path for p in parts])
    labels = " ".join(f"WHEN {sql_literal(str(p.path))} THEN {sql_literal(p.label)}" for p in parts)
    where = f"(CASE _elt_f {labels} END) || ' record ' || (file_row_number + 1)"
    conflicts = con.execute(
        f"SELECT {key}, list({where} ORDER BY _elt_f, file_row_number), count(*) OVER ()"
        f" FROM (SELECT *, hash({row}) AS _elt_h FROM read_parquet({listing},"
        f" filename = '_elt_f', file_row_number = true)) GROUP BY {key}"
        f" HAVING count(DISTINCT _elt_h) > 1 ORDER BY {key} LIMIT 1"
    ).fetchone()
    if conflicts is None:
        return
    *values, where, n_keys = conflicts
    shown = ", ".join(f"{c}={v}" for c, v in zip(primary_key, values, strict=True))
    more = f"; {n_keys - 1} more keys conflict" if n_keys > 1 else ""
    raise SourceDataError(
        f"source {source!r}: duplicate key in batch: {shown} has different values in "
        f"{' and '.join(where[:3])}{more}",
        hint="send one row per key in a batch, or give the source a contract whose drift_policy "
        "is quarantine to divert such rows (nothing was loaded)",
    )


def first_line(exc: BaseException, *parts: SourcePart) -> str:
    """The first line of a DuckDB error, with our temporary part paths replaced by labels."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if text.startswith("Invalid Input Error: CSV Error on Line") and len(lines) > 2:
        text += f": {lines[2]}"  # DuckDB puts the reason after the offending line
    for part in parts:
        text = text.replace(str(part.path), part.label)
    return text
