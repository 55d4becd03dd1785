"""Column lineage of one dbt model: parse its compiled SQL with sqlglot (DuckDB dialect) and trace
every output column to the columns of the relations it reads, with the expressions in between.

Edges are *direct* when the input's value flows into the output (identity, rename, transformation,
aggregation) and *indirect* when it only decides which value is taken: a CASE/IF condition, a
window's partition or order, an aggregate's FILTER. Columns that decide which rows exist (WHERE,
HAVING, QUALIFY, JOIN conditions, GROUP BY, DISTINCT, ORDER BY, subqueries used as filters) are
dataset-level edges: their target is the model's `ROWS` pseudo-column, as a `count(*)` source is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

DIALECT = "duckdb"
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
ROWS = "*"  # pseudo-column: the output depends on which rows exist (count(*)), not on a value
# Strongest first: an edge takes the strongest kind found on its path.
KINDS = ("aggregation", "transformation", "rename", "identity")
# An input seen only in one of these positions decides the value without being part of it.
INDIRECT_KINDS = ("conditional", "window", "filter")
# Dataset-level kinds: the input decides which rows the model has (target column ROWS).
DATASET_KINDS = ("join", "filter", "group_by", "sort")
_CLAUSES = (("where", "filter"), ("having", "filter"), ("qualify", "filter"), ("group", "group_by"))

Schema = dict[str, dict[str, dict[str, str]]]  # schema -> relation -> column -> type


@dataclass(frozen=True, order=True)
class ColumnRef:
    asset: str
    column: str

    def __str__(self) -> str:
        return f"{self.asset}.{self.column}"


@dataclass(frozen=True)
class ColumnEdge:
    """`target` is computed from `source` through `steps` (SQL expressions, outermost first)."""

    source: ColumnRef
    target: ColumnRef
    kind: str
    steps: tuple[str, ...]

    @property
    def transformation(self) -> str:
        return " <- ".join(self.steps)


@dataclass(frozen=True)
class ModelLineage:
    columns: tuple[str, ...]
    edges: tuple[ColumnEdge, ...]
    dataset_edges: tuple[ColumnEdge, ...] = ()  # target ROWS: filters, joins, groupings, sorts


def parse_model(sql: str) -> exp.Expression:
    """Parse compiled SQL and drop database names (they name the scratch file, not the data)."""
    tree = sqlglot.parse_one(sql, dialect=DIALECT)
    for table in tree.find_all(exp.Table):
        table.set("catalog", None)
    return tree


def model_lineage(
    asset: str,
    sql: str,
    schema: Schema,
    relations: Mapping[tuple[str, str], str],
) -> ModelLineage:
    """Output columns of a model and, per column, the upstream columns it is computed from.

    `relations` maps (schema, relation) of every model and source to its asset key.
    """
    try:
        tree = qualify(
            parse_model(sql), schema=schema, dialect=DIALECT, validate_qualify_columns=False
        )
        scope = build_scope(tree)
        columns = tuple(tree.named_selects)
        edges: list[ColumnEdge] = []
        for column in columns:
            try:
                root = lineage(
                    column, tree, schema=schema, dialect=DIALECT, scope=scope, copy=False
                )
                edges.extend(_edges(ColumnRef(asset, column), root, relations))
            except (SqlglotError, TypeError):  # this column only (e.g. `*` of an unknown table)
                continue
        rows = _dataset_edges(ColumnRef(asset, ROWS), scope, relations)
    except SqlglotError as exc:
        raise ValueError(f"cannot trace the columns of {asset}: {exc}") from exc
    unique: dict[tuple[ColumnRef, ColumnRef], ColumnEdge] = {}
    for e in edges:  # over several paths, the strongest kind (a direct use beats a condition)
        kept = unique.get((e.source, e.target))
        if kept is None or _rank(e.kind) < _rank(kept.kind):
            unique[(e.source, e.target)] = e
    by_kind = {(e.source, e.kind): e for e in rows}
    return ModelLineage(
        columns,
        tuple(unique[k] for k in sorted(unique)),
        tuple(by_kind[k] for k in sorted(by_kind)),
    )


def _edges(
    target: ColumnRef, root: Node, relations: Mapping[tuple[str, str], str]
) -> list[ColumnEdge]:
    out: list[ColumnEdge] = []

    def walk(node: Node, path: tuple[exp.Expression, ...], role: str | None) -> None:
        if isinstance(node.source, exp.Table) and not node.downstream:
            asset = _asset_of(node.source, relations)
            if asset is not None:
                source = ColumnRef(asset, exp.to_column(node.name).name)
                out.append(_edge(source, target, path, role))
            return
        here = path + (node.expression,)
        if not node.downstream or _counts_rows(node.expression):
            # count(*), or a value built from no column (a literal): it depends on the rows read.
            for table in node.source.find_all(exp.Table):
                asset = _asset_of(table, relations)
                if asset is not None:
                    out.append(
                        ColumnEdge(ColumnRef(asset, ROWS), target, "aggregation", _steps(here))
                    )
        if not node.downstream:
            return
        for child in node.downstream:
            # The outermost indirect position wins: once a column only decides, so do its inputs.
            walk(child, here, role or _hop_role(node.expression, child.name))

    walk(root, (), None)
    return out


def _counts_rows(expression: exp.Expression) -> bool:
    """Whether the expression counts rows (`count(*)`) beside reading columns."""
    return any(isinstance(c.this, exp.Star) for c in expression.find_all(exp.Count))


def _rank(kind: str) -> int:
    order = KINDS + INDIRECT_KINDS
    return order.index(kind) if kind in order else len(order)


def _hop_role(expression: exp.Expression, child_name: str) -> str | None:
    """How `expression` uses the column `child_name`: None if its value flows into the result
    anywhere, else the indirect kind of its first use (conditional, window, filter)."""
    wanted = exp.to_column(child_name)
    uses = [
        c
        for c in expression.find_all(exp.Column)
        if c.name == wanted.name and (not wanted.table or c.table == wanted.table)
    ]
    roles = [_position(c, expression) for c in uses]
    if not roles or None in roles:
        return None
    return roles[0]


def _position(column: exp.Expression, root: exp.Expression) -> str | None:
    node = column
    while node is not root and node.parent is not None:
        parent, key = node.parent, node.arg_key
        if isinstance(parent, exp.If | exp.Case) and key == "this":
            return "conditional"  # CASE WHEN <cond>, CASE <operand> WHEN, IF(<cond>, ...)
        if isinstance(parent, exp.Window) and key in ("partition_by", "order"):
            return "window"
        if isinstance(parent, exp.Filter) and key == "expression":
            return "filter"  # aggregate FILTER (WHERE ...)
        node = parent
    return None


def _dataset_edges(
    target: ColumnRef, root: Scope, relations: Mapping[tuple[str, str], str]
) -> list[ColumnEdge]:
    """Inputs that decide which rows the model has, from every SELECT in the query."""
    out: list[ColumnEdge] = []
    for scope in root.traverse():
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        clauses = [(select.args.get(key), kind) for key, kind in _CLAUSES]
        clauses += [(join.args.get("on"), "join") for join in select.args.get("joins") or []]
        clauses.append((select.args.get("order"), "sort"))
        if select.args.get("distinct") is not None:
            clauses += [(e, "group_by") for e in select.selects]
        if scope.is_subquery:  # `x IN (SELECT ...)`, `EXISTS (...)`: the projection filters
            clauses += [(e, "filter") for e in select.selects]
        for clause, kind in clauses:
            if clause is None:
                continue
            for column in clause.find_all(exp.Column):
                for source in _resolve(scope, column, relations, depth=0):
                    out.append(ColumnEdge(source, target, kind, (_readable(clause),)))
    return out


def _resolve(
    scope: Scope, column: exp.Column, relations: Mapping[tuple[str, str], str], depth: int
) -> list[ColumnRef]:
    """The relation columns a column of `scope` reads, through CTEs and derived tables (an
    unqualified name in ORDER BY/GROUP BY is one of the scope's own output columns)."""
    if depth > 32:
        return []
    if not column.table:
        found = []
        for projection in getattr(scope.expression, "selects", []):
            if projection.alias_or_name == column.name:
                for inner in projection.find_all(exp.Column):
                    if inner.table:
                        found += _resolve(scope, inner, relations, depth + 1)
        return found
    source = scope.sources.get(column.table)
    if isinstance(source, exp.Table):
        asset = _asset_of(source, relations)
        return [ColumnRef(asset, column.name)] if asset is not None else []
    if not isinstance(source, Scope):
        return []
    branches = source.set_operation_scopes or [source]
    found = []
    for branch in branches:
        for projection in getattr(branch.expression, "selects", []):
            if projection.alias_or_name == column.name:
                for inner in projection.find_all(exp.Column):
                    found += _resolve(branch, inner, relations, depth + 1)
    return found


def _asset_of(table: exp.Table, relations: Mapping[tuple[str, str], str]) -> str | None:
    return relations.get((table.db or "main", table.name))


def _steps(path: tuple[exp.Expression, ...]) -> tuple[str, ...]:
    return tuple(_readable(e) for e in path)


def _readable(expression: exp.Expression) -> str:
    """SQL text without the quotes qualification adds around plain lowercase names."""
    plain = expression.copy()
    for ident in plain.find_all(exp.Identifier):
        if _PLAIN_NAME.fullmatch(ident.name):
            ident.set("quoted", False)
    return plain.sql(dialect=DIALECT)


def _edge(
    source: ColumnRef, target: ColumnRef, path: tuple[exp.Expression, ...], role: str | None
) -> ColumnEdge:
    bodies = [e.unalias() if isinstance(e, exp.Alias) else e for e in path]
    if role is not None:
        kind = role
    elif any(b.find(exp.AggFunc) is not None for b in bodies):
        kind = "aggregation"
    elif all(isinstance(b, exp.Column) for b in bodies):
        kind = "identity" if source.column == target.column else "rename"
    else:
        kind = "transformation"
    return ColumnEdge(source, target, kind, _steps(path))
