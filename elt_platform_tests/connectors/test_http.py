"""HTTP connector end to end: the real demo API on 127.0.0.1, loaded inside real Dagster runs."""

from __future__ import annotations

import os

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elt_demo.api import DemoApi, FaultPlan
from elt_demo.synthetic import SyntheticSpec, generate_frames
from elt_platform_tests.connectors.helpers import Installation, make_installation

TOKEN_ENV = "ELT_TEST_PAYMENTS_TOKEN"
TOKEN = "tok-3f9a1c-never-in-logs"
COLUMNS = {
    "payment_id": "BIGINT",
    "order_id": "BIGINT",
    "method": "VARCHAR",
    "amount": "DECIMAL(12,2)",
    "paid_at": "TIMESTAMP",
}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    data = tmp_path_factory.mktemp("api_data")
    (data / "payments").mkdir()
    payments = generate_frames(SyntheticSpec(rows=3_000, seed=11))["payments"]
    pq.write_table(payments, data / "payments" / "payments-0.parquet")
    saved = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = TOKEN
    with DemoApi(data, token=TOKEN).running() as server:
        yield server
    if saved is None:
        os.environ.pop(TOKEN_ENV, None)
    else:
        os.environ[TOKEN_ENV] = saved


@pytest.fixture(scope="module")
def inst(tmp_path_factory, api) -> Installation:
    common = {
        "connector": "http",
        "base_url": api.url,
        "auth_env": TOKEN_ENV,
        "columns": COLUMNS,
        "primary_key": ["payment_id"],
        "cursor_field": "payment_id",
        "since_param": "since_id",
        "page_size": 100,
        "concurrency": 4,
        "timeout_seconds": 0.5,
        "max_attempts": 10,
        "backoff_seconds": 0.01,
        "max_backoff_seconds": 0.05,
        "retries": {"max_retries": 1, "delay_seconds": 0.1},
    }
    return make_installation(
        tmp_path_factory.mktemp("http"),
        {
            "pay_offset": {**common, "endpoint": "/v1/payments", "pagination": "offset"},
            "pay_page": {**common, "endpoint": "/v1/payments", "pagination": "page"},
            "pay_cursor": {**common, "endpoint": "/v1/payments/feed", "pagination": "cursor"},
            "pay_missing": {**common, "endpoint": "/v1/refunds"},
            "pay_bad_token": {**common, "endpoint": "/v1/payments", "auth_env": "ELT_TEST_WRONG"},
        },
    )


def _served(api: DemoApi) -> tuple:
    con = duckdb.connect()
    try:
        folder = api.data_dir / "payments" / "*.parquet"
        return con.execute(
            f"SELECT count(*), sum(amount), max(payment_id) FROM read_parquet('{folder}')"
        ).fetchone()
    finally:
        con.close()


@pytest.mark.parametrize("source", ["pay_offset", "pay_page", "pay_cursor"])
def test_30_percent_injected_faults_still_load_every_row_exactly_once(inst, api, source):
    api.set_faults(
        FaultPlan(
            error_rate=0.2,
            drop_rate=0.1,
            retry_after=0.01,
            slow_rate=0.03,
            slow_seconds=0.8,
            seed=len(source),
        )
    )
    before = api.stats
    try:
        outcome = inst.build(inst.sandbox(f"faults_{source}"), source)
    finally:
        api.set_faults(FaultPlan())
    assert outcome.success, outcome.error
    injected = {k: api.stats.get(k, 0) - before.get(k, 0) for k in api.stats}
    assert injected.get("status_500", 0) and injected.get("status_429", 0)
    assert injected.get("dropped", 0) and injected.get("slow", 0)
    count, total, _ = _served(api)
    env = outcome.environment
    assert inst.query(
        env, source, "SELECT count(*), count(DISTINCT payment_id), sum(amount) FROM t"
    ) == [(count, count, total)]  # noqa: E501
    meta = inst.materialization_metadata(outcome.run_id)
    assert meta["http_retries"] > 0 and meta["rows_read"] == count
    assert meta["source_schema"]["amount"] == "string"  # as the API sends it
    assert meta["dagster/row_count"] == count and meta["rows_per_second"] > 0


def test_new_records_are_picked_up_incrementally_and_rollback_rewinds_the_cursor(inst, api):
    env = inst.sandbox("http_incremental")
    assert inst.build(env, "pay_offset").success
    v1 = inst.version(env, "pay_offset")
    again = inst.build(env, "pay_offset")
    assert inst.version(env, "pay_offset").version_id == v1.version_id  # idempotent
    assert inst.materialization_metadata(again.run_id)["http_requests"] == 1

    count, _, top = _served(api)
    more = pa.table(
        {
            "payment_id": pa.array(range(top + 1, top + 251), pa.int64()),
            "order_id": pa.array([1] * 250, pa.int64()),
            "method": pa.array(["card"] * 250),
            "amount": pa.array([1] * 250, pa.decimal128(12, 2)),
            "paid_at": pa.array([0] * 250, pa.timestamp("us")),
        }
    )
    extra = api.data_dir / "payments" / "payments-1.parquet"
    pq.write_table(more, extra)
    try:
        grown = inst.build(env, "pay_offset")
        assert grown.success, grown.error
        meta = inst.materialization_metadata(grown.run_id)
        assert (meta["rows_read"], meta["rows_added"]) == (250, 250)
        assert meta["source_position"]["since"] == top
        v2 = inst.version(env, "pay_offset")
        assert v2.rows == count + 250

        inst.wh.environments.set_pointers(env, {"raw/pay_offset": v1.version_id}, run_id=None)
        replay = inst.build(env, "pay_offset")
        assert replay.success, replay.error
        assert inst.materialization_metadata(replay.run_id)["rows_added"] == 250
        assert inst.version(env, "pay_offset").version_id == v2.version_id
    finally:
        extra.unlink()


def test_bad_credentials_fail_fast_and_the_token_is_never_recorded(inst, api, monkeypatch):
    env = inst.sandbox("http_auth")
    monkeypatch.setenv("ELT_TEST_WRONG", "wrong-" + TOKEN)
    outcome = inst.build(env, "pay_bad_token")
    assert not outcome.success
    assert "HTTP 401" in outcome.error and "pay_bad_token" in outcome.error
    assert inst.step_attempts(outcome.run_id) == 1
    assert TOKEN not in inst.event_text(outcome.run_id)

    ok = inst.build(env, "pay_offset")
    assert ok.success
    assert TOKEN not in inst.event_text(ok.run_id)

    monkeypatch.delenv("ELT_TEST_WRONG")
    unset = inst.build(env, "pay_bad_token")
    assert not unset.success and "ELT_TEST_WRONG" in unset.error and "is not set" in unset.error


def test_missing_endpoint_fails_fast(inst):
    outcome = inst.build(inst.sandbox("http_404"), "pay_missing")
    assert not outcome.success and "HTTP 404" in outcome.error
    assert inst.step_attempts(outcome.run_id) == 1


@pytest.mark.parametrize(
    ("source", "plan", "expected"),
    [
        ("pay_offset", FaultPlan(html=True), "text/html instead of JSON"),
        (
            "pay_cursor",
            FaultPlan(bad_next_link=True),
            "page 2 (/v1/payments/feed) was refused with HTTP 400: invalid cursor",
        ),  # noqa: E501
    ],
)
def test_html_or_an_invalid_page_token_fails_naming_the_page(inst, api, source, plan, expected):
    env = inst.sandbox(f"http_bad_{'html' if plan.html else 'cursor'}")
    api.set_faults(plan)
    try:
        outcome = inst.build(env, source)
    finally:
        api.set_faults(FaultPlan())
    assert not outcome.success
    assert expected in outcome.error and source in outcome.error
    assert inst.step_attempts(outcome.run_id) == 1
    assert inst.wh.environments.pointers(env) == {}


def test_connection_dropped_on_every_attempt_leaves_the_environment_unchanged(inst, api):
    env = inst.sandbox("http_dropped")
    assert inst.build(env, "pay_offset").success
    before = inst.wh.environments.pointers(env)
    _, _, top = _served(api)
    extra = api.data_dir / "payments" / "payments-2.parquet"
    pq.write_table(
        pa.table(
            {
                "payment_id": pa.array([top + 1000], pa.int64()),
                "order_id": pa.array([1], pa.int64()),
                "method": pa.array(["card"]),
                "amount": pa.array([5], pa.decimal128(12, 2)),
                "paid_at": pa.array([0], pa.timestamp("us")),
            }
        ),
        extra,
    )
    api.set_faults(FaultPlan(drop_rate=1.0))
    try:
        outcome = inst.build(env, "pay_offset")
        assert not outcome.success
        assert "failed 10 times" in outcome.error and "pay_offset" in outcome.error
        assert inst.step_attempts(outcome.run_id) == 2  # transient: retried by Dagster once
        assert inst.wh.environments.pointers(env) == before
        api.set_faults(FaultPlan())
        recovered = inst.build(env, "pay_offset")  # nothing lost, nothing doubled
        assert recovered.success
        assert inst.materialization_metadata(recovered.run_id)["rows_added"] == 1
    finally:
        api.set_faults(FaultPlan())
        extra.unlink()
