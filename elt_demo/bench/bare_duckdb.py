"""The benchmark baseline: the dbt project's transformations run on bare DuckDB, no dbt, no Dagster.

The model SQL is read from the dbt project itself and only ``ref()``/``source()`` are substituted,
so the baseline cannot drift from the models it is compared with. Every model becomes a table in
one DuckDB file, built in dependency order over one connection in one process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb

from elt_demo.synthetic.landing import raw_views_sql

MODEL_SCHEMA = "main"  # where dbt-duckdb puts models when the profile sets no schema
SOURCE_SCHEMAS = {"raw": "raw"}  # dbt source name -> DuckDB schema, as in _sources.yml

_REF = re.compile(r"\{\{\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*\}\}")
_SOURCE = re.compile(r"\{\{\s*source\(\s*['\"](\w+)['\"]\s*,\s*['\"](\w+)['\"]\s*\)\s*\}\}")
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)


class UnsupportedModelSql(Exception):
    """A model uses Jinja beyond ref()/source(), which the bare baseline cannot render."""


@dataclass(frozen=True)
class BareModel:
    name: str
    sql: str  # plain DuckDB SQL
    depends_on: frozenset[str]


def default_dbt_project_dir() -> Path:
    from elt_platform.settings import load_settings

    return load_settings().dbt_project_dir


def load_models(dbt_project_dir: Path) -> list[BareModel]:
    """The project's models rendered to plain SQL, in an order that respects their refs."""
    sources: dict[str, BareModel] = {}
    for path in sorted((Path(dbt_project_dir) / "models").rglob("*.sql")):
        sources[path.stem] = _render(path)
    graph = {name: model.depends_on for name, model in sources.items()}
    for name, deps in graph.items():
        unknown = deps - sources.keys()
        if unknown:
            raise UnsupportedModelSql(f"{name} refs unknown models: {', '.join(sorted(unknown))}")
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise UnsupportedModelSql(f"models ref each other in a cycle: {exc.args[1]}") from exc
    return [sources[name] for name in order]


def run_bare_pipeline(
    landing_dir: Path, db_path: Path, *, dbt_project_dir: Path | None = None
) -> dict[str, int]:
    """Build every model of the dbt project as a table in ``db_path`` from the landing files.

    Raw inputs are views over the landing files (as in the platform's scratch database); models
    replace same-named tables. Returns the row count of every model table, by model name.
    """
    models = load_models(dbt_project_dir or default_dbt_project_dir())
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    con = duckdb.connect(str(db_path))
    try:
        con.execute("set enable_progress_bar = false")  # dbt shows none either
        for statement in raw_views_sql(landing_dir, schema=SOURCE_SCHEMAS["raw"]):
            con.execute(statement)
        for model in models:
            # CTAS reports the rows it wrote: no second scan to count them.
            (count,) = con.execute(
                f"create or replace table {MODEL_SCHEMA}.{model.name} as\n{model.sql}"
            ).fetchall()[0]
            counts[model.name] = int(count)
        con.execute("checkpoint")  # the file is complete when we return, as after dbt build
    finally:
        con.close()
    return counts


def _render(path: Path) -> BareModel:
    text = _JINJA_COMMENT.sub("", path.read_text())
    depends_on = frozenset(_REF.findall(text))

    def source(match: re.Match[str]) -> str:
        name, table = match.groups()
        if name not in SOURCE_SCHEMAS:
            raise UnsupportedModelSql(f"{path.name}: unknown source {name!r}")
        return f"{SOURCE_SCHEMAS[name]}.{table}"

    sql = _REF.sub(lambda m: f"{MODEL_SCHEMA}.{m.group(1)}", text)
    sql = _SOURCE.sub(source, sql)
    if "{{" in sql or "{%" in sql:
        raise UnsupportedModelSql(
            f"{path}: only {{{{ ref() }}}} and {{{{ source() }}}} can be rendered without dbt"
        )
    return BareModel(name=path.stem, sql=sql.strip().rstrip(";"), depends_on=depends_on)
