"""The bare-DuckDB baseline builds exactly what `dbt build` builds from the same landing files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from elt_demo.bench.bare_duckdb import UnsupportedModelSql, load_models, run_bare_pipeline
from elt_demo.synthetic import SyntheticSpec, generate_frames, raw_views_sql, write_landing

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
MARTS = ("customers", "orders", "daily_revenue")


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    found = str(candidate) if candidate.exists() else shutil.which("dbt")
    if found is None:
        pytest.fail("dbt is not installed next to this Python interpreter nor on PATH")
    return found


def run_dbt_build(landing_dir: Path, work: Path) -> Path:
    """`dbt build` of the repo's project into a fresh DuckDB file over the landing files."""
    db_path = work / "dbt.duckdb"
    con = duckdb.connect(str(db_path))
    for statement in raw_views_sql(landing_dir):
        con.execute(statement)
    con.close()
    profiles = work / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "elt_demo:\n  target: elt\n  outputs:\n    elt:\n      type: duckdb\n"
        f"      path: '{db_path}'\n      threads: 2\n"
    )
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    for name in ("DBT_TARGET_PATH", "DBT_PROFILES_DIR", "DBT_LOG_PATH", "DBT_PROJECT_DIR"):
        env.pop(name, None)
    proc = subprocess.run(
        [
            dbt_executable(),
            "build",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(profiles),
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return db_path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, int]]:
    work = tmp_path_factory.mktemp("bare_vs_dbt")
    landing = work / "landing"
    write_landing(generate_frames(SyntheticSpec(rows=2_000, seed=5)), landing, rows_per_file=700)
    dbt_db = run_dbt_build(landing, work)
    bare_db = work / "bare.duckdb"
    counts = run_bare_pipeline(landing, bare_db, dbt_project_dir=DBT_PROJECT_DIR)
    return dbt_db, bare_db, counts


def both(dbt_db: Path, bare_db: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"attach '{dbt_db}' as dbt (read_only)")
    con.execute(f"attach '{bare_db}' as bare (read_only)")
    return con


def test_bare_pipeline_returns_row_counts_of_every_model(built) -> None:
    _, bare_db, counts = built
    expected = {p.stem for p in (DBT_PROJECT_DIR / "models").rglob("*.sql")}
    assert set(counts) == expected
    assert counts["stg_orders"] == counts["orders"] == counts["int_orders_enriched"] == 2_000
    assert counts["customers"] == counts["stg_customers"] == 200
    with duckdb.connect(str(bare_db), read_only=True) as con:
        assert counts, "nothing to check"
        for name, n in counts.items():
            assert con.execute(f"select count(*) from main.{name}").fetchall()[0][0] == n


def test_bare_marts_match_dbt_marts_in_counts_and_revenue(built) -> None:
    dbt_db, bare_db, counts = built
    con = both(dbt_db, bare_db)
    for mart in MARTS:
        dbt_count = con.execute(f"select count(*) from dbt.main.{mart}").fetchall()[0][0]
        assert counts[mart] == dbt_count, mart
    revenue = {
        db: con.execute(f"select sum(revenue) from {db}.main.daily_revenue").fetchall()[0][0]
        for db in ("dbt", "bare")
    }
    assert revenue["bare"] == revenue["dbt"] > 0
    ltv = {
        db: con.execute(f"select sum(lifetime_value) from {db}.main.customers").fetchall()[0][0]
        for db in ("dbt", "bare")
    }
    assert ltv["bare"] == ltv["dbt"] == revenue["dbt"]


def test_bare_marts_are_row_for_row_and_type_for_type_identical_to_dbt(built) -> None:
    dbt_db, bare_db, _ = built
    con = both(dbt_db, bare_db)
    for mart in MARTS:
        for a, b in (("dbt", "bare"), ("bare", "dbt")):
            diff = con.execute(
                f"select count(*) from (select * from {a}.main.{mart} "
                f"except all select * from {b}.main.{mart})"
            ).fetchall()[0][0]
            assert diff == 0, f"{mart}: rows in {a} missing from {b}"
        types = {
            db: con.execute(
                "select column_name, data_type from information_schema.columns "
                f"where table_catalog = '{db}' and table_name = '{mart}' order by ordinal_position"
            ).fetchall()
            for db in ("dbt", "bare")
        }
        assert types["bare"] == types["dbt"], mart


def test_load_models_orders_models_after_their_refs() -> None:
    models = load_models(DBT_PROJECT_DIR)
    position = {model.name: i for i, model in enumerate(models)}
    assert models, "nothing to check"
    for model in models:
        assert all(position[dep] < position[model.name] for dep in model.depends_on)
        assert "{{" not in model.sql and "{%" not in model.sql
    assert position["stg_orders"] < position["int_orders_enriched"] < position["daily_revenue"]


def test_load_models_refuses_jinja_it_cannot_render(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "a.sql").write_text("select 1 as x")
    (models / "b.sql").write_text("{{ config(materialized='view') }}\nselect * from {{ ref('a') }}")
    with pytest.raises(UnsupportedModelSql, match="b.sql"):
        load_models(tmp_path)
    (models / "b.sql").write_text("select * from {{ ref('missing') }}")
    with pytest.raises(UnsupportedModelSql, match="missing"):
        load_models(tmp_path)
