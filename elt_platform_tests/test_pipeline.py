"""End to end: real sources, real dbt runs, a real Dagster instance, real versioned storage."""

from __future__ import annotations

import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import PROD, STAGING
from elt_platform.errors import UnknownEnvironment, WriteNotAllowed
from elt_platform.launch.runs import build_environment
from elt_platform.orchestration.instance import open_instance
from elt_platform_tests.conftest import make_settings

MARTS = ("customers", "orders", "daily_revenue")


def _count(con, relation):
    return con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]


def test_staging_build_materializes_every_asset_with_passing_checks(platform_home):
    wh = open_warehouse(platform_home)
    pointers = wh.environments.pointers(STAGING)
    for asset in ["raw/customers", "raw/orders", "stg_orders", "int_orders_enriched", *MARTS]:
        assert asset in pointers, asset
    instance = open_instance(platform_home)
    records = instance.get_asset_records()
    assert any(r.asset_entry.asset_key.to_user_string() == "orders" for r in records)


def test_prod_serves_published_marts_with_the_same_data_as_staging(platform_home):
    wh = open_warehouse(platform_home)
    assert wh.environments.pointers(PROD) == wh.environments.pointers(STAGING)
    prod = wh.catalogs.connect(PROD)
    try:
        # late-arriving updates are deduplicated: one row per order in the mart
        orders = _count(prod, "main.orders")
        distinct = prod.execute("SELECT count(DISTINCT order_id) FROM raw.orders").fetchone()[0]
        assert orders == distinct
        assert _count(prod, "raw.orders") > distinct
        revenue = prod.execute("SELECT sum(revenue) FROM main.daily_revenue").fetchone()[0]
        expected = prod.execute(
            "SELECT sum(order_amount) FROM main.orders WHERE status <> 'cancelled'"
        ).fetchone()[0]
        assert revenue == expected
    finally:
        prod.close()


def test_dbt_tests_are_recorded_as_checks_of_the_staging_partition(platform_home):
    import dagster as dg

    instance = open_instance(platform_home)
    check_key = None
    from elt_platform.launch.runs import load_definitions

    defs = load_definitions(platform_home)
    for spec in defs.resolve_asset_graph().asset_check_keys:
        if spec.asset_key == dg.AssetKey("orders"):
            check_key = spec
            break
    assert check_key is not None, "the orders mart has dbt tests"
    records = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=50)
    partitions = [r.event.dagster_event.event_specific_data.partition for r in records if r.event]
    assert STAGING in partitions, "check results were stored for the staging partition"
    assert None not in partitions  # never the unpartitioned fallback


def test_rebuilding_identical_sources_is_idempotent(platform_home):
    wh = open_warehouse(platform_home)
    before = wh.environments.pointers(STAGING)
    files_before = sorted(p for p in (wh.root / "versions").rglob("*.parquet"))
    outcome = build_environment(platform_home, STAGING)
    assert outcome.success, outcome.error
    assert wh.environments.pointers(STAGING) == before
    assert all(a.version_id == before[a.asset] for a in outcome.assets.values() if a.version_id)
    assert sorted(p for p in (wh.root / "versions").rglob("*.parquet")) == files_before
    current = wh.releases.current()
    result = wh.publish(STAGING, triggered_by="test")
    assert not result.changed and result.release.release_id == current.release_id


def test_prod_cannot_be_materialized_directly(platform_home):
    wh = open_warehouse(platform_home)
    before = wh.environments.pointers(PROD)
    with pytest.raises(WriteNotAllowed, match="cannot be materialized directly in 'prod'"):
        build_environment(platform_home, PROD, selection=["raw/products"])  # before any run
    assert wh.environments.pointers(PROD) == before


def test_unknown_environment_is_refused_before_any_run(platform_home):
    with pytest.raises(UnknownEnvironment, match="nosuch"):
        build_environment(platform_home, "nosuch")


def test_missing_source_files_fail_with_a_clear_message_and_change_nothing(tmp_path, sources_dir):
    settings = make_settings(tmp_path / "home", ELT_SOURCES_DIR=str(tmp_path / "empty"))
    outcome = build_environment(settings, STAGING, selection=["raw/orders"])
    assert not outcome.success
    assert "no files match" in outcome.error and "orders" in outcome.error
    assert open_warehouse(settings).environments.pointers(STAGING) == {}


def test_model_whose_inputs_are_missing_names_the_missing_asset(tmp_path, sources_dir):
    settings = make_settings(tmp_path / "home", ELT_SOURCES_DIR=str(sources_dir))
    outcome = build_environment(settings, STAGING, selection=["stg_orders"])
    assert not outcome.success
    assert "raw/orders" in outcome.error and "has no version" in outcome.error


def test_catalog_is_readable_while_a_writer_rebuilds_it(platform_home):
    wh = open_warehouse(platform_home)
    reader = duckdb.connect(str(wh.catalogs.ensure_fresh(PROD)), read_only=True)
    try:
        rows = _count(reader, "main.customers")
        wh.catalogs.rebuild(PROD)  # atomic rename; the open reader keeps its snapshot
        assert _count(reader, "main.customers") == rows
    finally:
        reader.close()
