"""OpenLineage events of a real build, promotion and rollback: emitted from inside the steps (START
when a step starts, COMPLETE/FAIL when it ends), valid against the official OpenLineage JSON
Schema with strict facet placement, and named per the spec's conventions for what is stored."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest
import sqlalchemy as sa

from elt_demo.api import serving_demo_api
from elt_demo.sources import ensure_synthetic_sources
from elt_platform.access.facade import open_warehouse
from elt_platform.environments import PROD, STAGING
from elt_platform.launch.runs import (
    build_environment,
    load_definitions,
    promote_via_sensor,
    rollback_via_job,
)
from elt_platform.orchestration.dataset_names import http_dataset, sql_table_dataset
from elt_platform.orchestration.instance import open_instance
from elt_platform.orchestration.names import PROMOTE_JOB
from elt_platform.orchestration.openlineage import read_events
from elt_platform.promotion.jobs import PROMOTION_SENSOR_IDENTITY
from elt_platform_tests.conftest import make_settings, run_cli
from elt_platform_tests.openlineage_validation import validate_event, validate_file


@dataclass
class Lineage:
    settings: object
    sources: Path
    api_url: str
    build_run: str
    release: str
    promote_run: str
    rollback_run: str
    refused_run: str
    events: list[dict]

    def of_run(self, dagster_run_id: str) -> list[dict]:
        """Events of the OpenLineage runs a Dagster run's steps emitted (parent = that run)."""
        return [
            e
            for e in self.events
            if e["run"]["facets"].get("parent", {}).get("run", {}).get("runId") == dagster_run_id
        ]

    def job(self, name: str, run_of: str | None = None) -> list[dict]:
        events = self.of_run(run_of) if run_of else self.events
        return [e for e in events if e["job"]["name"] == name]


@pytest.fixture(scope="module")
def lineage(tmp_path_factory) -> Lineage:
    """A fresh installation: staging built, promoted by the sensor, rolled back, and a promotion
    refused (a stale candidate)."""
    root = tmp_path_factory.mktemp("openlineage")
    sources = root / "sources"
    ensure_synthetic_sources(sources, rows=2_000, seed=5)
    settings = make_settings(root / "home", ELT_SOURCES_DIR=str(sources))
    with serving_demo_api(sources) as api:
        build = build_environment(settings, STAGING)
        api_url = api.url
    assert build.success, build.error
    promoted = promote_via_sensor(settings, actor="test")
    assert promoted.success, promoted.reason
    rolled = rollback_via_job(settings, promoted.release_id, actor="test")
    assert rolled.success
    refused = (
        load_definitions(settings)
        .resolve_job_def(PROMOTE_JOB)
        .execute_in_process(
            run_config={"ops": {"promote": {"config": {"expected_manifest_hash": "stale"}}}},
            instance=open_instance(settings),
            raise_on_error=False,
            tags=PROMOTION_SENSOR_IDENTITY,  # untagged, it would be refused as `anonymous`
        )
    )
    assert not refused.success
    return Lineage(
        settings,
        sources,
        api_url,
        build.run_id,
        promoted.release_id,
        promoted.run_id,
        rolled.run_id,
        refused.run_id,
        read_events(settings),
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_event_of_a_build_promote_and_rollback_validates_against_the_official_schema(
    lineage,
):
    assert len(lineage.events) > 20, "nothing to check"
    for event in lineage.events:
        validate_event(event, strict_placement=True)
    assert validate_file(lineage.settings.openlineage_events_path, strict_placement=True) == len(
        lineage.events
    )
    assert not [e for e in lineage.events if e["outputs"] and "elt://" in str(e["outputs"])]


def test_each_asset_emits_start_when_its_step_starts_and_complete_before_the_step_ends(lineage):
    instance = open_instance(lineage.settings)
    steps: dict[str, dict[str, float]] = {}
    first_materialization: dict[str, float] = {}
    for record in instance.all_logs(lineage.build_run):
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        kind = event.event_type_value
        if kind in ("STEP_START", "STEP_SUCCESS"):
            steps.setdefault(event.step_key, {})[kind] = record.timestamp
        elif kind == "ASSET_MATERIALIZATION":
            first_materialization.setdefault(event.step_key, record.timestamp)
    manifest = open_warehouse(lineage.settings).releases.get(lineage.release).manifest
    by_asset: dict[str, list[dict]] = {}
    for e in lineage.of_run(lineage.build_run):
        if not e["job"]["name"].endswith(".checks"):
            by_asset.setdefault(e["job"]["name"], []).append(e)
    assert set(by_asset) == set(manifest) and by_asset, "every built asset, nothing else"
    for asset, events in by_asset.items():
        assert [e["eventType"] for e in events] == ["START", "COMPLETE"], asset
        start, complete = events
        assert start["run"]["runId"] == complete["run"]["runId"]
        params = {
            p["key"]: p["value"]
            for p in start["run"]["facets"]["executionParameters"]["parameters"]
        }
        step = steps[params["step"]]
        started, ended = _time(start["eventTime"]), _time(complete["eventTime"])
        # Emitted by the step itself: after Dagster's STEP_START, before its first materialization
        # (a batch after the run could not be), and completed before the step ended.
        assert step["STEP_START"] - 0.001 <= started.timestamp(), asset
        assert started.timestamp() <= first_materialization[params["step"]], asset
        assert started < ended and ended.timestamp() <= step["STEP_SUCCESS"] + 0.001, asset
        out = complete["outputs"][0]
        assert out["facets"]["version"]["datasetVersion"] == manifest[asset]
    dbt_start = _time(by_asset["customers"][0]["eventTime"]).timestamp()
    assert dbt_start < first_materialization["dbt_models"] - 1, "START precedes the dbt build"


def test_a_promotion_emits_events_for_prod_datasets_versioned_by_the_release(lineage):
    wh = open_warehouse(lineage.settings)
    manifest = wh.releases.get(lineage.release).manifest
    prod_catalog = wh.catalogs.path(PROD).resolve()
    for run_id in (lineage.promote_run, lineage.rollback_run):
        events = [e for e in lineage.events if e["run"]["runId"] == run_id]
        assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
        complete = events[1]
        outputs = {o["name"]: o for o in complete["outputs"]}
        assert {o["namespace"] for o in outputs.values()} == {f"duckdb://{prod_catalog}"}
        expected = {
            f"prod.{a.rsplit('/', 1)[0] if '/' in a else 'main'}.{a.rsplit('/', 1)[-1]}": a
            for a in manifest
        }
        assert set(outputs) == set(expected)
        con = duckdb.connect(str(prod_catalog), read_only=True)
        try:
            for name, out in outputs.items():
                assert out["facets"]["version"]["datasetVersion"] == lineage.release
                tags = {t["key"]: t["value"] for t in out["facets"]["tags"]["tags"]}
                assert tags["environment"] == PROD and tags["asset"] == expected[name]
                assert tags["content_version"] == manifest[expected[name]]
                rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                assert rows > 0, name  # the name is the prod view itself
        finally:
            con.close()
        inputs = {i["name"]: i for i in complete["inputs"]}
        assert {i["facets"]["version"]["datasetVersion"] for i in inputs.values()} == set(
            manifest.values()
        )
    promote = next(e for e in lineage.events if e["run"]["runId"] == lineage.promote_run)
    assert promote["job"]["name"] == "promote_release"
    complete = [e for e in lineage.events if e["run"]["runId"] == lineage.promote_run][1]
    checked = [i for i in complete["inputs"] if "dataQualityAssertions" in i["inputFacets"]]
    assert len(checked) == len(manifest)  # every asset of the demo is gated
    assertions = [
        a for i in checked for a in i["inputFacets"]["dataQualityAssertions"]["assertions"]
    ]
    assert assertions and all(a["success"] for a in assertions)
    rollback = [e for e in lineage.events if e["run"]["runId"] == lineage.rollback_run][0]
    assert rollback["job"]["name"] == "rollback_prod"


def test_a_refused_promotion_emits_fail_with_the_reason(lineage):
    events = [e for e in lineage.events if e["run"]["runId"] == lineage.refused_run]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    message = events[1]["run"]["facets"]["errorMessage"]["message"]
    assert "blocked" in message or "staging changed" in message
    assert not events[1]["outputs"]


def test_versions_are_parquet_folders_named_by_path_and_known_as_their_catalog_view(lineage):
    completes = [e for e in lineage.job("customers", lineage.build_run) if e["outputs"]]
    assert completes, "nothing to check"
    for e in lineage.of_run(lineage.build_run):
        for out in e["outputs"]:
            assert out["namespace"] == "file"
            folder = Path(out["name"])
            assert folder.is_absolute() and list(folder.glob("*.parquet")), folder
            assert folder.name == out["facets"]["version"]["datasetVersion"]
            (view,) = out["facets"]["symlinks"]["identifiers"]
            assert view["namespace"].startswith("duckdb://") and view["type"] == "VIEW"
            catalog = Path(view["namespace"].removeprefix("duckdb://"))
            assert catalog.name == "staging.duckdb" and view["name"].startswith("staging.")
            con = duckdb.connect(str(catalog), read_only=True)
            try:
                rows = con.execute(f"SELECT count(*) FROM {view['name']}").fetchone()[0]
            finally:
                con.close()
            assert rows == out["outputFacets"]["outputStatistics"]["rowCount"]
            tags = {t["key"]: t["value"] for t in out["facets"]["tags"]["tags"]}
            assert tags["environment"] == STAGING and tags["asset"] == e["job"]["name"]


def test_raw_assets_read_source_files_the_sql_database_and_the_http_endpoint(lineage):
    def inputs(asset):
        start, complete = lineage.job(asset, lineage.build_run)
        names = {(i["namespace"], i["name"]) for i in complete["inputs"]}
        assert names == {(i["namespace"], i["name"]) for i in start["inputs"]}
        return names, complete

    orders, _ = inputs("raw/orders")
    files = sorted((lineage.sources / "orders").glob("*.parquet"))
    assert files and orders == {("file", str(p.resolve())) for p in files}
    products, _ = inputs("raw/products")
    assert products == {("file", str((lineage.sources / "products" / "products.csv").resolve()))}
    customers, complete = inputs("raw/customers")
    database = (lineage.sources / "db" / "shop.sqlite").resolve()
    assert customers == {(f"sqlite://{database}", "main.customers")}
    email = complete["outputs"][0]["facets"]["columnLineage"]["fields"]["email"]["inputFields"]
    assert [(f["namespace"], f["field"], f["transformations"][0]["subtype"]) for f in email] == [
        (f"sqlite://{database}", "email", "IDENTITY")
    ]
    payments, _ = inputs("raw/payments")
    port = urlsplit(lineage.api_url).port
    assert payments == {(f"http://127.0.0.1:{port}", "/v1/payments")}


def _fields(facet: dict, column: str | None = None) -> set[tuple[str, str, str, str]]:
    entries = facet["dataset"] if column is None else facet["fields"][column]["inputFields"]
    return {
        (Path(f["name"]).parent.name, f["field"], t["type"], t["subtype"])
        for f in entries
        for t in f["transformations"]
    }


def test_column_lineage_has_indirect_entries_for_filters_joins_groupings_and_row_counts(lineage):
    (_, daily) = lineage.job("daily_revenue", lineage.build_run)
    facet = daily["outputs"][0]["facets"]["columnLineage"]
    assert _fields(facet) == {
        ("int_orders_enriched", "status", "INDIRECT", "FILTER"),
        ("int_orders_enriched", "order_date", "INDIRECT", "GROUP_BY"),
    }
    assert _fields(facet, "order_count") == {
        ("int_orders_enriched", "order_id", "INDIRECT", "AGGREGATION")  # count(*): the rows
    }
    assert ("int_orders_enriched", "order_id", "INDIRECT", "AGGREGATION") in _fields(
        facet, "avg_order_value"
    )  # sum(...) / count(*)
    (_, customers) = lineage.job("customers", lineage.build_run)
    facet = customers["outputs"][0]["facets"]["columnLineage"]
    assert _fields(facet, "lifetime_value") == {
        ("int_orders_enriched", "order_amount", "DIRECT", "AGGREGATION"),
        ("int_orders_enriched", "status", "INDIRECT", "CONDITIONAL"),
    }
    assert {
        ("stg_customers", "customer_id", "INDIRECT", "JOIN"),
        ("int_orders_enriched", "customer_id", "INDIRECT", "JOIN"),
        ("int_orders_enriched", "customer_id", "INDIRECT", "GROUP_BY"),
    } <= _fields(facet)
    read = {i["name"] for i in customers["inputs"]}
    referenced = {f["name"] for v in facet["fields"].values() for f in v["inputFields"]}
    assert referenced <= read  # column lineage names exactly the versions the step read


def test_gate_results_are_input_facets_of_a_checks_run_under_the_assets_run(lineage):
    start, complete = lineage.job("raw/products.checks")
    (build_start, _) = lineage.job("raw/products", lineage.build_run)
    assert [start["eventType"], complete["eventType"]] == ["START", "COMPLETE"]
    assert complete["run"]["facets"]["parent"]["run"]["runId"] == build_start["run"]["runId"]
    (checked,) = complete["inputs"]
    assertions = {
        a["assertion"]: a["success"]
        for a in checked["inputFacets"]["dataQualityAssertions"]["assertions"]
    }
    assert assertions == {"contract": True, "volume": True}
    assert "dataQualityAssertions" not in checked["facets"]


class _Collector(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_failed_step_emits_fail_with_its_error_over_http_to_a_configured_endpoint(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    empty = tmp_path / "sources"
    empty.mkdir()
    url = f"http://127.0.0.1:{server.server_port}"
    settings = make_settings(tmp_path / "home", ELT_SOURCES_DIR=str(empty), ELT_OPENLINEAGE_URL=url)
    try:
        outcome = build_environment(settings, STAGING, selection=["raw/orders"])
    finally:
        server.shutdown()
    assert not outcome.success and "no files match" in (outcome.error or "")
    assert [(path, e["eventType"]) for path, e in _Collector.received] == [
        ("/api/v1/lineage", "START"),
        ("/api/v1/lineage", "FAIL"),
    ]
    fail = _Collector.received[1][1]
    assert fail["job"]["name"] == "raw/orders"
    assert "no files match" in fail["run"]["facets"]["errorMessage"]["message"]
    for _, event in _Collector.received:
        validate_event(event, strict_placement=True)
    assert not settings.openlineage_events_path.exists()  # HTTP replaced the file transport


def test_an_unreachable_lineage_endpoint_never_fails_the_step(tmp_path, sources_dir):
    with HTTPServer(("127.0.0.1", 0), _Collector) as closed:
        port = closed.server_port  # bound then closed: nothing listens there
    settings = make_settings(
        tmp_path / "home",
        ELT_SOURCES_DIR=str(sources_dir),
        ELT_OPENLINEAGE_URL=f"http://127.0.0.1:{port}",
    )
    outcome = build_environment(settings, STAGING, selection=["raw/products"])
    assert outcome.success, outcome.error
    assert outcome.assets["raw/products"].version_id


def test_sql_and_http_sources_are_named_per_the_conventions():
    url = sa.engine.make_url
    assert sql_table_dataset(url("postgresql+psycopg2://u:secret@db.internal/shop"), None, "t") == (
        sql_table_dataset(url("postgresql://db.internal:5432/shop"), "public", "t")
    )
    name = sql_table_dataset(url("postgresql://u:p@db:6543/shop"), "sales", "orders")
    assert (name.namespace, name.name) == ("postgres://db:6543", "shop.sales.orders")
    name = sql_table_dataset(url("mysql+pymysql://u:p@db/shop"), None, "orders")
    assert (name.namespace, name.name) == ("mysql://db:3306", "shop.orders")
    name = http_dataset("https://api.example.com/v2/payments?page=3")
    assert (name.namespace, name.name) == ("https://api.example.com:443", "/v2/payments")
    assert "secret" not in str(sql_table_dataset(url("postgresql://u:secret@h/d"), None, "t"))


def test_release_chain_cli_walks_from_a_mart_to_the_source_datasets(lineage):
    proc = run_cli(lineage.settings, "lineage", "customers", "--release", lineage.release)
    assert proc.returncode == 0, proc.stderr
    manifest = open_warehouse(lineage.settings).releases.get(lineage.release).manifest
    for asset in ("int_orders_enriched", "stg_orders", "raw/orders", "raw/customers"):
        assert f"{asset}@{manifest[asset]}" in proc.stdout
    database = (lineage.sources / "db" / "shop.sqlite").resolve()
    assert f"source sqlite://{database} main.customers" in proc.stdout
    assert "/v1/payments" in proc.stdout and "products.csv" in proc.stdout
    missing = run_cli(lineage.settings, "lineage", "customers", "--release", "r9999-nope")
    assert missing.returncode == 2 and "unknown release" in missing.stderr
