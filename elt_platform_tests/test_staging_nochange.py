"""A staging build with no changed source launches no run and recomputes nothing; a source that
did change (a file overwritten with the same size and mtime, a new row in the SQL database, a new
record behind the API) is still extracted. Real sources, real demo API, real dbt and Dagster."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elt_demo.api import serving_demo_api
from elt_platform.access.facade import open_warehouse
from elt_platform.launch.runs import load_definitions, promote_via_sensor
from elt_platform.launch.staging import build_staging
from elt_platform.project.asset_graph import project_assets
from elt_platform_tests.conftest import make_settings
from elt_platform_tests.sandboxes.conftest import copy_dbt_project
from elt_platform_tests.test_cli_startup import _probe

# Parquet whose size does not depend on the values of fixed-width columns.
FIXED_WIDTH = {"compression": "none", "use_dictionary": False, "write_statistics": False}


def _orders_file(sources):
    return sorted((sources / "orders").glob("orders-0*.parquet"))[0]


@pytest.fixture(scope="module")
def staging(tmp_path_factory, sources_dir):
    """An installation over its own copy of the landing data (the tests change it), whose
    staging has been built once."""
    root = tmp_path_factory.mktemp("nochange")
    sources = root / "landing"
    shutil.copytree(sources_dir, sources)
    orders = _orders_file(sources)  # rewritten so a value can change without changing its size
    pq.write_table(pq.read_table(orders), orders, **FIXED_WIDTH)
    project = copy_dbt_project(root / "dbt_project")  # the last test edits a model
    settings = make_settings(
        root / "home", ELT_SOURCES_DIR=str(sources), ELT_DBT_PROJECT_DIR=str(project)
    )
    with serving_demo_api(sources):
        first = build_staging(settings)
        assert first.outcome.run_id is not None and first.outcome.success, first.outcome.error
        yield settings


def _served(settings) -> tuple[dict, dict]:
    wh = open_warehouse(settings)
    return wh.environments.pointers("staging"), wh.environments.pointer_builds("staging")


def _changed_build(settings, asset: str):
    """Build staging; `asset`'s probe must have flagged it and the run must have succeeded."""
    before, _ = _served(settings)
    built = build_staging(settings)
    assert built.probes[asset], built.probes
    assert built.outcome.run_id is not None and built.outcome.success, built.outcome.error
    after, _ = _served(settings)
    assert after[asset] != before[asset], f"{asset} was not extracted again"
    return built


def test_a_second_staging_build_launches_no_run_and_keeps_every_build(staging):
    build_staging(staging)  # whatever an earlier build left to settle
    pointers, builds = _served(staging)
    again = build_staging(staging)
    assets = project_assets(staging).keys
    assert assets and set(again.outcome.assets) == set(assets)
    assert again.outcome.run_id is None and again.outcome.success
    assert all(why is None for why in again.probes.values()), again.probes
    assert len(again.probes) == sum("/" in a for a in assets) > 0
    for asset in assets:
        outcome = again.outcome.assets[asset]
        assert outcome.recomputed is False and outcome.version_id == pointers[asset], outcome
    assert _served(staging) == (pointers, builds)


def test_a_no_change_staging_build_from_the_cli_imports_neither_dagster_nor_dbt(staging):
    pointers = _served(staging)
    found, stdout = _probe(staging, "build", "staging")
    assert found == {"code": 0, "loaded": []}, stdout
    assert "nothing recomputed, no run launched" in stdout
    assert _served(staging) == pointers


def test_a_file_overwritten_with_the_same_size_and_mtime_is_extracted(staging):
    path = _orders_file(staging.sources_dir)
    stat = path.stat()
    table = pq.read_table(path)
    ordered_at = table.column("ordered_at").to_pylist()
    ordered_at[0] -= dt.timedelta(seconds=1)  # a fixed-width value: the size stays the same
    changed = table.set_column(
        table.schema.get_field_index("ordered_at"),
        "ordered_at",
        pa.array(ordered_at, table.schema.field("ordered_at").type),
    )
    pq.write_table(changed, path, **FIXED_WIDTH)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    built = _changed_build(staging, "raw/orders")
    assert built.probes["raw/orders"].startswith("files changed"), built.probes


def test_a_new_row_in_the_sql_source_is_extracted(staging):
    database = staging.sources_dir / "db" / "shop.sqlite"
    con = sqlite3.connect(database)
    try:
        newest = con.execute("SELECT max(updated_at) FROM customers").fetchone()[0]
        later = (dt.datetime.fromisoformat(newest) + dt.timedelta(hours=1)).isoformat(" ")
        con.execute(
            "INSERT INTO customers SELECT customer_id + 1000000, first_name, last_name,"
            " 'new' || email, phone, street_address, city, region, postal_code, birth_date,"
            " signup_at, ? FROM customers ORDER BY customer_id LIMIT 1",
            (later,),
        )
        con.commit()
    finally:
        con.close()
    _changed_build(staging, "raw/customers")


def test_a_new_record_behind_the_api_is_extracted(staging):
    """A new delivered order (landing file) settled by new payments (the API): valid data, so
    the dbt tests pass and the payments land in raw/payments."""
    land = staging.sources_dir
    con = duckdb.connect()
    order = con.execute(
        f"SELECT o.* FROM read_parquet('{land}/orders/*.parquet') o"
        " QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY updated_at DESC) = 1"
        " AND status = 'delivered' ORDER BY order_id LIMIT 1"
    ).to_arrow_table()
    assert order.num_rows == 1
    payments = pa.concat_tables([pq.read_table(f) for f in sorted(land.glob("payments/*.parquet"))])
    new_order = con.execute(
        "SELECT max(order_id) + 1 FROM read_parquet(?)", [str(land / "orders" / "*.parquet")]
    ).fetchone()[0]
    new_payment = max(payments.column("payment_id").to_pylist()) + 1
    rows = [
        p | {"payment_id": new_payment + i, "order_id": new_order}
        for i, p in enumerate(
            r for r in payments.to_pylist() if r["order_id"] == order.column("order_id")[0].as_py()
        )
    ]
    assert rows, "the order has no payment"
    copy = order.set_column(0, "order_id", pa.array([new_order], pa.int64()))
    pq.write_table(
        copy.cast(pq.read_schema(_orders_file(land))), land / "orders" / "orders-new.parquet"
    )
    pq.write_table(
        pa.Table.from_pylist(rows, schema=payments.schema), land / "payments" / "new.parquet"
    )
    _changed_build(staging, "raw/payments")
    version = open_warehouse(staging).resolve("staging")["raw/payments"]
    found = con.execute(
        f"SELECT count(*) FROM {version.scan_sql} WHERE payment_id >= {new_payment}"
    ).fetchone()[0]
    assert found == len(rows)


def test_after_a_model_edit_staging_is_one_runs_work_and_promotes(staging):
    """Edit a model with every source unchanged: one run recomputes the model, the sources are
    not extracted again but are recorded as that run's (reused) builds, so the candidate is one
    run and one code version, and the sensor promotes it."""
    assert promote_via_sensor(staging, actor="test").success  # prod serves the current staging
    enriched = staging.dbt_project_dir / "models" / "intermediate" / "int_orders_enriched.sql"
    text = enriched.read_text()
    assert "    orders.quantity,\n" in text
    enriched.write_text(
        text.replace("    orders.quantity,\n", "    orders.quantity,\n    1 as edited,\n")
    )
    docs = enriched.with_name("_intermediate.yml")  # governed: the new column is classified
    entry = "      - name: category\n"
    assert entry in docs.read_text()
    column = (
        "      - name: edited\n        description: A column added by the edit.\n"
        "        data_type: integer\n        config:\n          meta: {sensitivity: internal}\n"
    )
    docs.write_text(docs.read_text().replace(entry, column + entry, 1))
    load_definitions.cache_clear()  # the code location reloads after a code change
    before, _ = _served(staging)
    built = build_staging(staging)
    assert built.outcome.run_id is not None and built.outcome.success, built.outcome.error
    assert built.probes and all(why is None for why in built.probes.values()), built.probes
    after, served = _served(staging)
    sources = sorted(built.probes)
    assert {a: after[a] for a in sources} == {a: before[a] for a in sources}  # not re-extracted
    wh = open_warehouse(staging)
    builds = wh.builds.many(served.values())
    assert {b.run_id for b in builds.values()} == {built.outcome.run_id}
    assert all(builds[served[a]].reused_from for a in sources)
    assert built.outcome.assets["int_orders_enriched"].recomputed is True
    promoted = promote_via_sensor(staging, actor="test")
    assert promoted.success, promoted.reason
    assert "int_orders_enriched" in promoted.changed_assets
    release = wh.releases.current()
    assert release.release_id == promoted.release_id and release.manifest == after


def test_a_changed_source_contract_re_extracts_and_regates_an_unchanged_source(staging):
    """The data did not change but the contract its rows are gated by did: the source's code
    version changed, so staging extracts it again and evaluates its gates in this run (a probe
    alone would keep the build, gated by the old contract). The other sources are kept."""
    sources_yml = staging.dbt_project_dir / "models" / "staging" / "_sources.yml"
    text = sources_yml.read_text()
    old = "            volume: {max_drop: 0.3}\n"  # raw.customers, the first table
    assert text.index(old) < text.index("      - name: orders")
    sources_yml.write_text(text.replace(old, "            volume: {max_drop: 0.5}\n", 1))
    load_definitions.cache_clear()
    before, _ = _served(staging)
    built = build_staging(staging)
    assert built.probes["raw/customers"] is None, built.probes  # the content did not change
    assert "raw/customers" in built.plan.rebuild, built.plan.decisions["raw/customers"]
    assert built.outcome.run_id is not None and built.outcome.success, built.outcome.error
    after, served = _served(staging)
    wh = open_warehouse(staging)
    customers = wh.builds.get(served["raw/customers"])
    assert customers.run_id == built.outcome.run_id and customers.reused_from is None
    assert after["raw/customers"] == before["raw/customers"]  # same content, same version id
    checks = wh.builds.checks(customers.build_id)
    assert checks and all(c.carried_from is None for c in checks.values()), checks
    kept = [a for a in built.probes if a != "raw/customers"]
    assert kept and all(wh.builds.get(served[a]).reused_from for a in kept)
