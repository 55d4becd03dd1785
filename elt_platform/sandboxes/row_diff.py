"""Row-level diff of two versions of a table, computed in DuckDB.

Each side is read once: per row, the key and one hash per compared column. The two are joined on
the key (full outer join); only differing rows are kept, so added / removed / changed rows and
per-column change counts come from one pass, and example rows are fetched by key afterwards.
Without a usable key (none declared, or not unique) rows are compared as multisets of row hashes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from elt_platform.sqlident import quote_ident

EXAMPLES = 3


@dataclass
class SchemaChange:
    added: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.retyped)


@dataclass
class TableDiff:
    """How the right side of one table differs from the left (added = only on the right)."""

    asset: str
    left_version: str | None
    right_version: str | None
    mode: str  # identical | key | rows | only_left | only_right
    key: list[str] = field(default_factory=list)
    rows_left: int = 0
    rows_right: int = 0
    added: int = 0
    removed: int = 0
    changed: int | None = 0
    schema: SchemaChange = field(default_factory=SchemaChange)
    column_changes: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return self.mode == "identical" or (
            self.mode in {"key", "rows"}
            and not (self.added or self.removed or self.changed or self.schema.changed)
        )

    def summary(self) -> dict[str, Any]:
        """The compact form stored in run metadata and experiment records."""
        return {
            "left_version": self.left_version,
            "right_version": self.right_version,
            "mode": self.mode,
            "key": self.key,
            "rows_left": self.rows_left,
            "rows_right": self.rows_right,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "schema_added": [c for c, _ in self.schema.added],
            "schema_removed": [c for c, _ in self.schema.removed],
            "schema_retyped": [c for c, _, _ in self.schema.retyped],
            "column_changes": {c: n for c, n in self.column_changes.items() if n},
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def schema_change(left: dict[str, str], right: dict[str, str]) -> SchemaChange:
    return SchemaChange(
        added=[(c, t) for c, t in right.items() if c not in left],
        removed=[(c, t) for c, t in left.items() if c not in right],
        retyped=[(c, left[c], right[c]) for c in left if c in right and left[c] != right[c]],
    )


def diff_relations(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    left_sql: str,
    right_sql: str,
    *,
    key: list[str] | None,
    left_version: str | None = None,
    right_version: str | None = None,
    examples: int = EXAMPLES,
) -> TableDiff:
    """Diff two SELECT statements (each side of one table) on `key` (or as row multisets)."""
    started = time.perf_counter()
    left_schema = _schema(con, left_sql)
    right_schema = _schema(con, right_sql)
    result = TableDiff(asset, left_version, right_version, mode="key", key=list(key or []))
    result.schema = schema_change(left_schema, right_schema)
    common = [c for c in left_schema if c in right_schema]
    retyped = {c for c, _, _ in result.schema.retyped}
    usable_key = bool(key) and all(k in common for k in key)
    if key and not usable_key:
        result.notes.append(f"key ({', '.join(key)}) is not in both versions; compared whole rows")
    if usable_key:
        _diff_on_key(con, result, left_sql, right_sql, common, retyped, examples)
        if result.mode == "rows":
            result.notes.append(
                f"key ({', '.join(key)}) is not unique or has NULLs; compared whole rows"
            )
    else:
        result.mode = "rows"
    if result.mode == "rows":
        _diff_rows(con, result, left_sql, right_sql, common, retyped, examples)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _diff_on_key(con, result: TableDiff, left_sql, right_sql, common, retyped, examples) -> None:
    """One aggregate over the full outer join of (key, per-column hashes): counts, per-column
    counts and the smallest example keys of each kind, without materializing anything.

    A side is absent when its first key column is NULL; a comparison with an absent side is NULL,
    so `l.h <> r.h` filters select changed matched rows only. (NULL keys never match: they break
    the row accounting below and the diff falls back to comparing whole rows.)"""
    key = result.key
    values = [c for c in common if c not in key]

    def side(sql: str) -> str:
        cols = [f"{_cmp(k, retyped)} AS {quote_ident(k)}" for k in key]
        cols += [f"hash({_cmp(c, retyped)}) AS __h{i}" for i, c in enumerate(values)]
        return f"SELECT {', '.join(cols)} FROM ({sql})"

    def key_of(alias: str) -> str:  # a single key column as is: a struct per row costs more
        if len(key) == 1:
            return f"{alias}.{quote_ident(key[0])}"
        return (
            "struct_pack("
            + ", ".join(f"{quote_ident(k)} := {alias}.{quote_ident(k)}" for k in key)
            + ")"
        )

    on = " AND ".join(f"l.{quote_ident(k)} = r.{quote_ident(k)}" for k in key)
    absent_l, absent_r = (f"{a}.{quote_ident(key[0])} IS NULL" for a in ("l", "r"))
    column_differs = [f"l.__h{i} <> r.__h{i}" for i in range(len(values))]
    any_differs = " OR ".join(column_differs) or "false"
    n = max(examples, 1)
    per_column = "".join(f", count(*) FILTER (WHERE {d})" for d in column_differs)
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE {absent_l}), count(*) FILTER (WHERE {absent_r}),"
        f" count(*), count(*) FILTER (WHERE {any_differs}),"
        f" min({key_of('r')}, {n}) FILTER (WHERE {absent_l}),"
        f" min({key_of('l')}, {n}) FILTER (WHERE {absent_r}),"
        f" min({key_of('l')}, {n}) FILTER (WHERE {any_differs})"
        f"{per_column} FROM ({side(left_sql)}) l FULL OUTER JOIN ({side(right_sql)}) r ON {on}"
    ).fetchone()
    row = (row[0], row[1], row[2] - row[0] - row[1], *row[3:])  # total pairs -> matched pairs
    added, removed, matched, changed = (int(v) for v in row[:4])
    result.rows_left = _count(con, left_sql)
    result.rows_right = _count(con, right_sql)
    # With unique keys each row matches at most once, so the matched pairs plus the one-sided rows
    # account for each side exactly; duplicate keys multiply pairs and break this.
    if matched + removed != result.rows_left or matched + added != result.rows_right:
        result.mode = "rows"
        return
    result.added, result.removed, result.changed = added, removed, changed
    result.column_changes = {c: int(n) for c, n in zip(values, row[7:], strict=True)}
    if examples:

        def as_tuple(value) -> tuple:
            return tuple(value[c] for c in key) if len(key) > 1 else (value,)

        picked = {
            kind: [as_tuple(k) for k in (keys or [])][:examples]
            for kind, keys in zip(("added", "removed", "changed"), row[4:7], strict=True)
        }
        result.examples = _key_examples(con, left_sql, right_sql, key, values, picked, retyped)


def _key_examples(
    con, left_sql, right_sql, key, values, picked, retyped=frozenset()
) -> dict[str, list[dict]]:
    """Fetch the example rows of both sides by key. The keys go in as parameters of an OR of
    equalities, which DuckDB pushes into the scan (a semi join would read every row again)."""
    out: dict[str, list[dict]] = {"added": [], "removed": [], "changed": []}
    wanted = list(dict.fromkeys(k for keys in picked.values() for k in keys))
    if not wanted:
        return out
    # Keys as compared (a retyped key column by its text form), so both sides match the picks.
    match = " AND ".join(f"{_cmp(k, retyped)} = ?" for k in key)
    where = " OR ".join(f"({match})" for _ in wanted)
    params = [v for k in wanted for v in k]
    compared = ", ".join(f"{_cmp(k, retyped)} AS __k{i}" for i, k in enumerate(key))
    n = len(key)
    fetched = {}
    for name, sql in (("l", left_sql), ("r", right_sql)):
        cursor = con.execute(f"SELECT *, {compared} FROM ({sql}) WHERE {where}", params)
        cols = [d[0] for d in cursor.description][:-n]
        fetched[name] = {
            tuple(row[-n:]): dict(zip(cols, row[:-n], strict=True)) for row in cursor.fetchall()
        }
    for k in picked["added"]:
        if k in fetched["r"]:
            out["added"].append(_jsonable(fetched["r"][k]))
    for k in picked["removed"]:
        if k in fetched["l"]:
            out["removed"].append(_jsonable(fetched["l"][k]))
    for k in picked["changed"]:
        left, right = fetched["l"].get(k), fetched["r"].get(k)
        if left is None or right is None:
            continue
        changes = {c: [left.get(c), right.get(c)] for c in values if left.get(c) != right.get(c)}
        out["changed"].append(
            {"key": _jsonable(dict(zip(key, k, strict=True))), "changes": _jsonable(changes)}
        )
    return out


def _diff_rows(con, result: TableDiff, left_sql, right_sql, common, retyped, examples) -> None:
    """Multiset comparison of whole rows (over the common columns); `changed` is unknown."""
    cols = ", ".join(_cmp(c, retyped) for c in common) or "NULL"
    counted = "SELECT hash({cols}) AS h, count(*) AS n FROM ({sql}) GROUP BY 1"
    row = con.execute(
        f"SELECT coalesce(sum(greatest(coalesce(r.n, 0) - coalesce(l.n, 0), 0)), 0),"
        f" coalesce(sum(greatest(coalesce(l.n, 0) - coalesce(r.n, 0), 0)), 0)"
        f" FROM ({counted.format(cols=cols, sql=left_sql)}) l"
        f" FULL OUTER JOIN ({counted.format(cols=cols, sql=right_sql)}) r ON l.h = r.h"
    ).fetchone()
    result.mode = "rows"
    result.added, result.removed, result.changed = int(row[0]), int(row[1]), None
    result.rows_left = _count(con, left_sql)
    result.rows_right = _count(con, right_sql)
    result.column_changes = {}
    if examples:
        result.examples = {
            "added": _row_examples(con, right_sql, left_sql, cols, examples),
            "removed": _row_examples(con, left_sql, right_sql, cols, examples),
            "changed": [],
        }


def _row_examples(con, sql: str, other: str, cols: str, limit: int) -> list[dict]:
    cursor = con.execute(
        f"SELECT * FROM ({sql}) WHERE hash({cols}) NOT IN"
        f" (SELECT hash({cols}) FROM ({other})) LIMIT {limit}"
    )
    names = [d[0] for d in cursor.description]
    return [_jsonable(dict(zip(names, r, strict=True))) for r in cursor.fetchall()]


def _cmp(column: str, retyped: set[str]) -> str:
    """A column as compared: a retyped column is compared by its text form on both sides."""
    ident = quote_ident(column)
    return f"CAST({ident} AS VARCHAR)" if column in retyped else ident


def _schema(con, sql: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE {sql}").fetchall()}


def _count(con, sql: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
