"""SQL connector end to end: a real SQLite file, loaded inside real Dagster runs."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from elt_demo.sources import write_source_database
from elt_demo.synthetic import SyntheticSpec, generate_frames
from elt_platform.connectors.state import source_schema
from elt_platform.launch.staging import probe_sources
from elt_platform_tests.connectors.helpers import Installation, make_installation

FAST_RETRIES = {"max_retries": 1, "delay_seconds": 0.1}


@pytest.fixture(scope="module")
def inst(tmp_path_factory) -> Installation:
    common = {"connector": "sql", "primary_key": ["customer_id"], "retries": FAST_RETRIES}
    inst = make_installation(
        tmp_path_factory.mktemp("sql"),
        {
            "shop_customers": {
                **common,
                "url": "sqlite:///{sources_dir}/shop.sqlite",
                "table": "customers",
                "cursor": "updated_at",
                "lookback": "1h",
                "lock_timeout": 0.3,
            },
            "missing_table": {
                **common,
                "url": "sqlite:///{sources_dir}/shop.sqlite",
                "table": "clients",
            },
            "missing_db": {
                **common,
                "url": "sqlite:///{sources_dir}/nowhere.sqlite",
                "table": "customers",
            },
        },
    )
    customers = generate_frames(SyntheticSpec(rows=3_000, seed=5))["customers"]
    write_source_database({"customers": customers}, inst.sources_dir / "shop.sqlite")
    return inst


def _db(inst: Installation) -> sqlite3.Connection:
    return sqlite3.connect(inst.sources_dir / "shop.sqlite", isolation_level=None)


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLAlchemy stores times in SQLite


def _max_updated(inst: Installation) -> str:
    with _db(inst) as con:
        return con.execute("SELECT max(updated_at) FROM customers").fetchone()[0]


def test_cursor_with_lookback_picks_up_new_changed_and_late_rows_once(inst):
    env = inst.sandbox("sql_incremental")
    first = inst.build(env, "shop_customers")
    assert first.success, first.error
    v1 = inst.version(env, "shop_customers")
    assert v1.rows == 300
    assert source_schema(inst.wh, "raw/shop_customers", v1.version_id)["updated_at"] == "TIMESTAMP"

    top = dt.datetime.fromisoformat(_max_updated(inst))
    late = top - dt.timedelta(minutes=10)  # committed after our read, stamped before the cursor
    with _db(inst) as con:
        update = "UPDATE customers SET city = ?, updated_at = ? WHERE customer_id = ?"
        con.execute(update, ("Springfield", _stamp(top + dt.timedelta(seconds=1)), 1))
        con.execute(update, ("Late Town", _stamp(late), 2))
        con.execute(
            "INSERT INTO customers SELECT 9001, first_name, last_name, 'new@example.org', phone,"
            " street_address, city, region, postal_code, birth_date, signup_at, ? FROM customers"
            " WHERE customer_id = 3",
            (_stamp(top + dt.timedelta(seconds=2)),),
        )
    second = inst.build(env, "shop_customers")
    assert second.success, second.error
    meta = inst.materialization_metadata(second.run_id)
    assert meta["rows_read"] < 300  # only rows inside the look-back window were read again
    assert (meta["rows_added"], meta["rows_replaced"]) == (1, 2)
    assert meta["rows_unchanged"] == meta["rows_read"] - 3
    assert inst.query(
        env, "shop_customers", "SELECT count(*), count(DISTINCT customer_id) FROM t"
    ) == [(301, 301)]  # noqa: E501
    assert inst.query(
        env, "shop_customers", "SELECT city FROM t WHERE customer_id IN (1, 2) ORDER BY customer_id"
    ) == [("Springfield",), ("Late Town",)]  # noqa: E501

    rerun = inst.build(env, "shop_customers")  # the look-back re-reads rows; nothing changes
    assert rerun.success, rerun.error
    v2 = inst.version(env, "shop_customers")
    assert inst.materialization_metadata(rerun.run_id)["rows_added"] == 0
    assert v2.version_id == inst.version(env, "shop_customers").version_id

    full = inst.sandbox("sql_full")  # a full read of today's table: the same content hash
    assert inst.build(full, "shop_customers").success
    assert inst.version(full, "shop_customers").version_id == v2.version_id


def test_rollback_rewinds_the_cursor_so_the_next_run_reloads_exactly_the_missing_rows(inst):
    env = inst.sandbox("sql_rollback")
    assert inst.build(env, "shop_customers").success
    v1 = inst.version(env, "shop_customers")
    with _db(inst) as con:
        top = dt.datetime.fromisoformat(_max_updated(inst)) + dt.timedelta(seconds=5)
        con.execute(
            "INSERT INTO customers SELECT 9100 + customer_id, first_name, last_name, email, phone,"
            " street_address, city, region, postal_code, birth_date, signup_at, ? FROM customers"
            " WHERE customer_id <= 5",
            (_stamp(top),),
        )
    assert inst.build(env, "shop_customers").success
    v2 = inst.version(env, "shop_customers")
    assert v2.rows == v1.rows + 5

    inst.wh.environments.set_pointers(env, {"raw/shop_customers": v1.version_id}, run_id=None)
    after = inst.build(env, "shop_customers")
    assert after.success, after.error
    assert inst.materialization_metadata(after.run_id)["rows_added"] == 5  # not skipped ...
    assert inst.version(env, "shop_customers").version_id == v2.version_id  # ... nor doubled


def test_missing_database_and_missing_table_fail_fast_without_retries(inst):
    env = inst.sandbox("sql_missing")
    for source, expected in (("missing_db", "does not exist"), ("missing_table", "'clients'")):
        outcome = inst.build(env, source)
        assert not outcome.success
        assert source in outcome.error and expected in outcome.error
        assert inst.step_attempts(outcome.run_id) == 1
        assert inst.wh.environments.pointers(env) == {}


def test_locked_database_is_transient_retried_then_reported_and_changes_nothing(inst):
    env = inst.sandbox("sql_locked")
    holder = _db(inst)
    holder.execute("BEGIN EXCLUSIVE")  # a writer holding the file for longer than we wait
    try:
        outcome = inst.build(env, "shop_customers")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not outcome.success
    assert "locked" in outcome.error and "shop_customers" in outcome.error
    assert inst.step_attempts(outcome.run_id) == 2  # Dagster's RetryPolicy ran it again
    assert inst.wh.environments.pointers(env) == {}
    assert inst.build(env, "shop_customers").success  # once the lock is gone, it loads


def test_unparseable_value_names_the_table_and_changes_nothing(inst):
    env = inst.sandbox("sql_bad_row")
    assert inst.build(env, "shop_customers").success
    before = inst.wh.environments.pointers(env)
    with _db(inst) as con:
        con.execute("UPDATE customers SET updated_at = '9999-99-99 nonsense' WHERE customer_id = 4")
    try:
        outcome = inst.build(env, "shop_customers")
    finally:
        with _db(inst) as con:
            con.execute("UPDATE customers SET updated_at = signup_at WHERE customer_id = 4")
    assert not outcome.success
    assert "shop_customers" in outcome.error and "customers" in outcome.error
    assert inst.step_attempts(outcome.run_id) == 1
    assert inst.wh.environments.pointers(env) == before


def test_the_change_probe_sees_late_and_in_place_updates_inside_the_look_back(inst):
    env = inst.sandbox("sql_probe")
    assert inst.build(env, "shop_customers").success

    def probe() -> str | None:
        found = probe_sources(inst.settings, inst.wh, env, ["raw/shop_customers"])
        return found["raw/shop_customers"]

    assert probe() is None  # nothing changed since the extraction
    top = dt.datetime.fromisoformat(_max_updated(inst))
    with _db(inst) as con:  # same cursor value, other content: only a digest can tell
        con.execute(
            "UPDATE customers SET city = city || ' Heights' WHERE updated_at = ?", (_stamp(top),)
        )
    assert probe() is not None
    assert inst.build(env, "shop_customers").success
    assert probe() is None
    with _db(inst) as con:  # a late row: stamped below the cursor, inside the look-back
        con.execute(
            "UPDATE customers SET city = 'Late Village', updated_at = ? WHERE customer_id = 4",
            (_stamp(top - dt.timedelta(minutes=5)),),
        )
    assert probe() is not None
    assert inst.build(env, "shop_customers").success
    assert inst.query(env, "shop_customers", "SELECT city FROM t WHERE customer_id = 4") == [
        ("Late Village",)
    ]
    assert probe() is None
