"""The one validator for SQL the platform runs on a user's behalf (`elt sql`, `elt catalog query`):
exactly one read-only SELECT, parsed with sqlglot, reading only relations the caller was given.

No table functions (read_csv, read_parquet, query, glob, json_each, ...), no file paths, no
database-qualified names, no ATTACH/COPY/INSTALL/LOAD/SET/PRAGMA or any other statement. What
runs is the statement regenerated from the parse, so the engine executes exactly what was checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from elt_platform.errors import QueryRefused

# What may stand in FROM/JOIN: relations, subqueries and pure row sources (UNNEST, VALUES).
_ROW_SOURCES = (exp.Table, exp.Subquery, exp.Unnest, exp.Values, exp.Lateral)
_QUERY_TYPES = (exp.Select, exp.SetOperation)


@dataclass(frozen=True)
class CheckedQuery:
    sql: str  # the statement to run, regenerated from the checked parse
    relations: frozenset[str]  # lower-case `schema.name` (or `name`) of every relation read


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def relation_name(schema: str | None, name: str) -> str:
    return f"{schema}.{name}".lower() if schema else name.lower()


def check_select(
    sql: str, allowed: Iterable[str], *, dialect: str, default_schema: str | None = None
) -> CheckedQuery:
    """Parse `sql` and refuse (QueryRefused) anything but one SELECT over `allowed` relations.

    `allowed` holds lower-case `schema.name` (or bare names for engines without schemas); an
    unqualified name resolves to `default_schema`."""
    allowed_set = {a.lower() for a in allowed}
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]
    except ParseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        raise QueryRefused(f"query refused: cannot parse it ({first})") from None
    if len(statements) != 1:
        raise QueryRefused(
            f"query refused: {len(statements)} statements; exactly one SELECT is allowed"
        )
    (statement,) = statements
    if not isinstance(statement, _QUERY_TYPES):
        raise QueryRefused(f"query refused: {_statement_kind(statement)} is not allowed")
    ctes = {c.alias_or_name.lower() for c in statement.find_all(exp.CTE)}
    relations: set[str] = set()
    for node in statement.walk():
        if isinstance(node, exp.Table):
            relations.add(_check_table(node, ctes, allowed_set, default_schema))
        elif isinstance(node, exp.Lateral | exp.TableFromRows) and not isinstance(
            node.this, exp.Subquery
        ):
            _refuse_function(node.this)
        elif isinstance(node, exp.Into):
            raise QueryRefused("query refused: SELECT ... INTO writes a table")
        elif isinstance(node, exp.Command):
            raise QueryRefused(f"query refused: {_statement_kind(node)} is not allowed")
    for source in _from_sources(statement):
        if not isinstance(source, _ROW_SOURCES):
            _refuse_function(source)
    return CheckedQuery(statement.sql(dialect=dialect), frozenset(relations))


def _check_table(
    node: exp.Table, ctes: set[str], allowed: set[str], default_schema: str | None
) -> str:
    if not isinstance(node.this, exp.Identifier):
        _refuse_function(node.this)
    if node.args.get("catalog") is not None:
        raise QueryRefused(
            f"query refused: {node.sql()} names a database; read the views by schema.name"
        )
    name, schema = node.name, node.db or None
    if schema is None and name.lower() in ctes:
        return name.lower()
    qualified = relation_name(schema or default_schema, name)
    if qualified in allowed:
        return qualified
    if "/" in name or "." in name or "\\" in name:
        raise QueryRefused(f"query refused: reading the file {name!r} is not allowed")
    shown = ", ".join(sorted(allowed)[:12]) + (", ..." if len(allowed) > 12 else "")
    raise QueryRefused(
        f"query refused: {relation_name(schema, name)!r} is not a relation you may read "
        f"(available: {shown or 'none'})"
    )


def _refuse_function(node: exp.Expression | None) -> None:
    name = _function_name(node) if node is not None else "?"
    raise QueryRefused(f"query refused: table function {name} is not allowed")


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return node.key


def _from_sources(statement: exp.Expression) -> list[exp.Expression]:
    """Every relation in a FROM or JOIN position, anywhere in the statement."""
    sources: list[exp.Expression] = []
    for node in statement.find_all(exp.From, exp.Join):
        target = node.this
        if isinstance(target, exp.Alias | exp.TableAlias):
            target = target.this
        if target is not None:
            sources.append(target)
    return sources


def _statement_kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()
