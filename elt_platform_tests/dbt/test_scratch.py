"""The scratch DuckDB file as dbt must find it, on a real file: what dbt does not rebuild is a view
over the environment's version, an incremental being rebuilt is a table holding its previous
version, dbt's own relations are left to dbt, and nothing is copied when it already matches."""

from __future__ import annotations

import duckdb
import pytest

from elt_platform.dbt.scratch import prepare_scratch, record_built
from elt_platform.store.catalog import default_relation_sql
from elt_platform.store.warehouse import Warehouse

RELATIONS = {"seed_a": ("main", "seed_a"), "inc": ("main", "inc"), "v": ("main", "v")}


@pytest.fixture
def env(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    con = duckdb.connect()
    try:
        seed = wh.versions.write_query(
            con, "seed_a", "SELECT range AS id FROM range(5)", environment="staging"
        )
        inc = wh.versions.write_query(
            con, "inc", "SELECT range AS id, 'old' AS s FROM range(3)", environment="staging"
        )
    finally:
        con.close()
    scratch = duckdb.connect(str(tmp_path / "dbt.duckdb"))
    yield scratch, {"seed_a": seed, "inc": inc}
    scratch.close()


def _types(con) -> dict[str, str]:
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return dict(rows)


def _prepare(con, pointers, rebuild):
    return prepare_scratch(
        con,
        pointers,
        RELATIONS,
        rebuild=set(rebuild),
        stateful={"inc"},
        relation_sql=default_relation_sql,
    )


def test_what_dbt_does_not_rebuild_is_mounted_and_an_incremental_gets_its_previous_version(env):
    con, pointers = env
    report = _prepare(con, pointers, ["inc"])
    assert report.mounted == ["seed_a"] and report.copied == ["inc"]
    assert _types(con) == {"seed_a": "VIEW", "inc": "BASE TABLE"}
    assert con.execute("SELECT count(*) FROM main.inc WHERE s = 'old'").fetchone()[0] == 3
    # Nothing changed: a second preparation mounts and copies nothing.
    con.execute("CREATE OR REPLACE TABLE main.inc AS SELECT range AS id, 'old' AS s FROM range(3)")
    record_built(con, "inc", "main", "inc", pointers["inc"].version_id)
    again = _prepare(con, pointers, ["inc"])
    assert again.mounted == [] and again.copied == [] and set(again.kept) == {"seed_a", "inc"}


def test_a_rebuilt_seed_loses_the_platform_view_so_dbt_can_seed(env):
    con, pointers = env
    _prepare(con, pointers, [])
    assert _types(con)["seed_a"] == "VIEW"
    report = _prepare(con, pointers, ["seed_a"])
    assert report.cleared == ["seed_a"] and "seed_a" not in _types(con)


def test_dbt_views_are_left_to_dbt_when_rebuilt_and_replaced_by_mounts_when_reused(env):
    con, pointers = env
    con.execute("CREATE VIEW main.v AS SELECT 1 AS x")  # dbt's own view of model v
    _prepare(con, pointers, ["v"])  # v has no version yet: dbt makes it
    assert "v" not in _types(con)  # a view in dbt's way is dropped; dbt recreates its own
    con.execute("CREATE TABLE main.v AS SELECT 1 AS x")  # dbt's table of v after its build
    version = pointers["seed_a"]
    record_built(con, "v", "main", "v", "some-other-version")
    report = _prepare(con, {**pointers, "v": version}, [])
    assert "v" in report.mounted and _types(con)["v"] == "VIEW"  # held another version: mounted


def test_a_dbt_table_holding_the_served_version_is_kept_as_is(env):
    con, pointers = env
    con.execute("CREATE TABLE main.seed_a AS SELECT range AS id FROM range(5)")
    record_built(con, "seed_a", "main", "seed_a", pointers["seed_a"].version_id)
    report = _prepare(con, pointers, [])
    assert "seed_a" in report.kept and _types(con)["seed_a"] == "BASE TABLE"
