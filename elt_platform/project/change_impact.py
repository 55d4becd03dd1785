"""Whether a change to a model's SQL can change what a downstream model reads from it: a new
column the downstream does not select, or a changed expression of a column it does not read, is
non-breaking for that downstream, whose build stays valid.

The decision is static and conservative. The downstream's columns come from its compiled SQL
(any use counts: values, conditions, joins, filters, groupings; a `*` over the model means every
column). The model's old SQL (archived under the code version its build recorded) and its new
SQL are compared with only those output columns kept: everything else (CTEs, FROM, joins, WHERE,
QUALIFY) must be identical. Jinja other than `ref`/`source`, refs to ephemeral models, DISTINCT,
GROUP BY (adding a column could change the rows), set operations and `*` projections in the
model all count as breaking.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope

from elt_platform.project.column_lineage import DIALECT, parse_model
from elt_platform.project.dbt_project import DbtProjectConfig
from elt_platform.project.manifest import Manifest, is_ephemeral

_JINJA_CALL = re.compile(r"\{\{\s*(ref|source)\s*\(([^)]*)\)\s*\}\}")
_ANY_JINJA = re.compile(r"\{\{|\{%|\{#")
_QUOTED = re.compile(r"""['"]([^'"]+)['"]""")


def archive_code(cfg: DbtProjectConfig, manifest: Manifest) -> None:
    """Keep every model's SQL under its code version (once), so a later plan can compare the
    code a build was computed with against the current code."""
    folder = cfg.state_dir / "code"
    folder.mkdir(parents=True, exist_ok=True)
    for uid, node in manifest.nodes.items():
        if node.get("resource_type") != "model":
            continue
        path = folder / f"{manifest.code_version(uid)}.sql"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(node.get("raw_code") or node.get("raw_sql") or "")
            os.replace(tmp, path)


def archived_code(cfg: DbtProjectConfig, code_version: str | None) -> str | None:
    try:
        return (
            (cfg.state_dir / "code" / f"{code_version}.sql").read_text() if code_version else None
        )
    except OSError:
        return None


def columns_read(
    compiled: str, upstream: tuple[str, str], schema: Mapping[tuple[str, str], Mapping[str, str]]
) -> set[str] | None:
    """Columns of relation `upstream` (schema, name) that a model's compiled SQL reads; None when
    it may read every column (`*`) or a column cannot be attributed."""
    try:
        tree = parse_model(compiled)
        for scope in build_scope(tree).traverse():  # `*` over the model: every column, even new
            names = {s.name for s in scope.sources.values() if isinstance(s, exp.Table)}
            stars = [
                p
                for p in getattr(scope.expression, "expressions", [])
                if isinstance(p, exp.Star) or isinstance(p.this, exp.Star)
            ]
            if upstream[1] in names and stars:
                return None
        nested: dict[str, dict[str, dict[str, str]]] = {}
        for (db_schema, name), columns in schema.items():
            nested.setdefault(db_schema, {})[name] = dict(columns)
        tree = qualify(tree, schema=nested, dialect=DIALECT, validate_qualify_columns=False)
        found: set[str] = set()
        for scope in build_scope(tree).traverse():
            tables = {
                alias: (source.args.get("db") and source.db, source.name)
                for alias, source in scope.sources.items()
                if isinstance(source, exp.Table)
            }
            reads_upstream = any(t[1] == upstream[1] for t in tables.values())
            only = next(iter(scope.sources)) if len(scope.sources) == 1 else None
            for column in scope.columns:
                table = tables.get(column.table or only or "")
                if table is None and reads_upstream and not column.table:
                    return None  # unattributed, and the model is in this scope
                if (
                    table is not None
                    and table[1] == upstream[1]
                    and table[0] in {None, upstream[0]}
                ):
                    found.add(column.name)
        return found
    except (SqlglotError, ValueError):
        return None


def unchanged_for(
    old_sql: str, new_sql: str, columns: set[str], manifest: Manifest
) -> tuple[bool, str]:
    """Whether the two versions of a model's SQL give the same rows and the same `columns`;
    with the reason when they may not."""
    old, new = _plain(old_sql, manifest), _plain(new_sql, manifest)
    if old is None or new is None:
        return False, "its SQL uses Jinja beyond ref/source"
    try:
        old_kept = _restricted(sqlglot.parse_one(old, dialect=DIALECT), columns)
        new_kept = _restricted(sqlglot.parse_one(new, dialect=DIALECT), columns)
    except SqlglotError:
        return False, "its SQL cannot be parsed"
    if old_kept is None or new_kept is None:
        return False, "its query shape is not comparable column by column"
    if old_kept != new_kept:
        return False, "a column it reads or its rows changed"
    return True, ""


def _plain(sql: str, manifest: Manifest) -> str | None:
    """SQL with ref()/source() calls replaced by stable names; None if other Jinja remains or a
    ref names an ephemeral model (its code is not part of this text)."""
    ephemeral = {n.get("name") for _, n in manifest.nodes.items() if is_ephemeral(n)}

    def name(match: re.Match) -> str:
        args = _QUOTED.findall(match.group(2))
        if match.group(1) == "ref" and args and args[-1] in ephemeral:
            raise LookupError(args[-1])
        return "__" + match.group(1) + "__" + "__".join(args)

    try:
        text = _JINJA_CALL.sub(name, sql)
    except LookupError:
        return None
    return None if _ANY_JINJA.search(text) else text


def _restricted(tree: exp.Expression, columns: set[str]) -> str | None:
    """The query with only the output columns in `columns` (and those they refer to by alias)."""
    if not isinstance(tree, exp.Select) or tree.args.get("distinct") or tree.args.get("group"):
        return None
    projections = {p.alias_or_name: p for p in tree.expressions}
    if any(isinstance(p, exp.Star) or isinstance(p.this, exp.Star) for p in tree.expressions):
        return None
    wanted = {c for c in columns if c != "*"}
    if wanted - set(projections):
        return None  # a column it reads is gone
    todo = list(wanted)
    while todo:  # DuckDB lets a projection use an earlier one's alias
        for column in projections[todo.pop()].find_all(exp.Column):
            if not column.table and column.name in projections and column.name not in wanted:
                wanted.add(column.name)
                todo.append(column.name)
    kept = tree.copy()
    kept.set("expressions", [projections[c].copy() for c in sorted(wanted)])
    return kept.sql(dialect=DIALECT, normalize=True, pretty=False)
