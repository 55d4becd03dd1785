"""Column lineage of one dbt model: parse its compiled SQL with sqlglot (DuckDB dialect) and trace
every output column to the columns of the relations it reads, with the expressions in between."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope

DIALECT = "duckdb"
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
ROWS = "*"  # pseudo-column: the output depends on which rows exist (count(*)), not on a value
# Strongest first: an edge takes the strongest kind found on its path.
KINDS = ("aggregation", "transformation", "rename", "identity")

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
    except SqlglotError as exc:
        raise ValueError(f"cannot trace the columns of {asset}: {exc}") from exc
    unique = {(e.source, e.target): e for e in edges}
    return ModelLineage(columns, tuple(unique[k] for k in sorted(unique)))


def _edges(
    target: ColumnRef, root: Node, relations: Mapping[tuple[str, str], str]
) -> list[ColumnEdge]:
    out: list[ColumnEdge] = []

    def walk(node: Node, path: tuple[exp.Expression, ...]) -> None:
        if isinstance(node.source, exp.Table) and not node.downstream:
            asset = _asset_of(node.source, relations)
            if asset is not None:
                source = ColumnRef(asset, exp.to_column(node.name).name)
                out.append(_edge(source, target, path))
            return
        here = path + (node.expression,)
        if not node.downstream:
            # A value built from no column (count(*), a literal): it depends on the rows read.
            for table in node.source.find_all(exp.Table):
                asset = _asset_of(table, relations)
                if asset is not None:
                    out.append(
                        ColumnEdge(ColumnRef(asset, ROWS), target, "aggregation", _steps(here))
                    )
            return
        for child in node.downstream:
            walk(child, here)

    walk(root, ())
    return out


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


def _edge(source: ColumnRef, target: ColumnRef, path: tuple[exp.Expression, ...]) -> ColumnEdge:
    bodies = [e.unalias() if isinstance(e, exp.Alias) else e for e in path]
    if any(b.find(exp.AggFunc) is not None for b in bodies):
        kind = "aggregation"
    elif all(isinstance(b, exp.Column) for b in bodies):
        kind = "identity" if source.column == target.column else "rename"
    else:
        kind = "transformation"
    return ColumnEdge(source, target, kind, _steps(path))
