"""SQL text for DuckDB built from names and values: the one place identifiers and literals are
quoted, so no caller hand-rolls escaping."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A double-quoted identifier (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """A single-quoted string literal (embedded quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def qualified(schema: str, name: str) -> str:
    """`"schema"."name"`."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"
