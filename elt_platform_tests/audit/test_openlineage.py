"""OpenLineage run events: emitted for every materialization, valid against the spec's schema,
to a file by default and to a local HTTP server when configured."""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.audit.openlineage import events_path, read_events
from elt_platform.audit.openlineage_runs import emit_run_lineage
from elt_platform.orchestration.instance import open_instance
from elt_platform_tests.audit.openlineage_schema import validator
from elt_platform_tests.conftest import make_settings


@pytest.fixture(scope="module")
def build_events(platform_home):
    """Events the staging build of the shared installation emitted."""
    wh = open_warehouse(platform_home)
    run_id = wh.releases.list()[-1].run_id
    events = [
        e
        for e in read_events(platform_home.warehouse_dir)
        if e["run"]["facets"]["parent"]["run"]["runId"] == run_id
    ]
    return run_id, events


def test_every_materialization_has_a_start_and_a_complete_event(platform_home, build_events):
    run_id, events = build_events
    release = open_warehouse(platform_home).releases.list()[-1]
    by_asset = {}
    for e in events:
        by_asset.setdefault(e["outputs"][0]["name"], []).append(e)
    assert set(by_asset) == set(release.manifest)
    assert by_asset, "nothing to check"
    for asset, pair in by_asset.items():
        assert [e["eventType"] for e in pair] == ["START", "COMPLETE"], asset
        assert pair[0]["run"]["runId"] == pair[1]["run"]["runId"]
        assert pair[0]["eventTime"] <= pair[1]["eventTime"]
        out = pair[1]["outputs"][0]
        assert out["facets"]["version"]["datasetVersion"] == release.manifest[asset]
        assert out["namespace"] == "elt://staging"


def test_events_validate_against_the_openlineage_schema(build_events):
    _, events = build_events
    check = validator()
    assert events, "nothing to check"
    for event in events:
        errors = sorted(check.iter_errors(event), key=str)
        assert not errors, errors[0]
        uuid.UUID(event["run"]["runId"])


def test_schema_check_rejects_an_invalid_event(build_events):
    _, events = build_events
    broken = json.loads(json.dumps(events[0]))
    broken["eventType"] = "FINISHED"
    del broken["run"]["facets"]["parent"]["_producer"]
    broken["eventTime"] = "yesterday"
    assert len(list(validator().iter_errors(broken))) == 3


def test_complete_event_carries_schema_column_lineage_quality_and_parameters(build_events):
    run_id, events = build_events
    complete = next(
        e for e in events if e["eventType"] == "COMPLETE" and e["outputs"][0]["name"] == "customers"
    )
    out = complete["outputs"][0]
    assert {f["name"] for f in out["facets"]["schema"]["fields"]} >= {"email", "lifetime_value"}
    ltv = out["facets"]["columnLineage"]["fields"]["lifetime_value"]["inputFields"]
    assert {(f["name"], f["field"]) for f in ltv} == {
        ("int_orders_enriched", "order_amount"),
        ("int_orders_enriched", "status"),
    }
    assert ltv[0]["transformations"][0]["subtype"] == "AGGREGATION"
    assertions = out["facets"]["dataQualityAssertions"]["assertions"]
    assert assertions and all(a["success"] for a in assertions)
    assert out["outputFacets"]["outputStatistics"]["rowCount"] > 0
    assert {i["name"] for i in complete["inputs"]} == {"stg_customers", "int_orders_enriched"}
    params = {
        p["key"]: p["value"] for p in complete["run"]["facets"]["executionParameters"]["parameters"]
    }
    assert params["environment"] == "staging" and params["elt/environment"] == "staging"
    assert complete["run"]["facets"]["parent"]["run"]["runId"] == run_id
    assert complete["run"]["facets"]["nominalTime"]["nominalStartTime"] <= complete["eventTime"]


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["staging"]))
def broken_asset() -> None:
    raise RuntimeError("source unreachable")


class _Collector(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_failed_materialization_emits_fail_over_http_to_a_configured_endpoint(
    tmp_path, monkeypatch
):
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = make_settings(tmp_path / "home")
        instance = open_instance(settings)
        result = dg.materialize(
            [broken_asset], instance=instance, partition_key="staging", raise_on_error=False
        )
        assert not result.success
        monkeypatch.setenv("ELT_OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_port}")
        sent = emit_run_lineage(settings.warehouse_dir, instance, result.run_id)
        assert emit_run_lineage(settings.warehouse_dir, instance, result.run_id) == 0  # once only
    finally:
        server.shutdown()
    assert sent == 2 and len(_Collector.received) == 2
    assert not events_path(settings.warehouse_dir).exists()  # HTTP replaced the file transport
    (path, start), (_, fail) = _Collector.received
    assert path == "/api/v1/lineage"
    assert [start["eventType"], fail["eventType"]] == ["START", "FAIL"]
    assert "source unreachable" in fail["run"]["facets"]["errorMessage"]["message"]
    check = validator()
    for event in (start, fail):
        assert not list(check.iter_errors(event))
