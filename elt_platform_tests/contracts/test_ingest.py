"""Drift policies and quarantine at ingestion, through real Dagster runs of the file connector."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from elt_demo.sources import ensure_synthetic_sources
from elt_platform.access.facade import open_warehouse
from elt_platform.connectors.replay import replay_quarantine
from elt_platform.environments import STAGING
from elt_platform.launch.runs import build_environment
from elt_platform.project.contracts.from_dbt import contracts_for, load_sources
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform_tests.conftest import edit_yaml, make_settings
from elt_platform_tests.sandboxes.conftest import copy_dbt_project


def _orders_source(data: dict) -> dict:
    return next(t for t in data["sources"][0]["tables"] if t["name"] == "orders")


def _install(tmp_path, policy: str):
    """A copy of the demo project whose raw orders declare drift policy `policy` (dbt meta)."""
    sources = tmp_path / "sources"
    ensure_synthetic_sources(sources, rows=300, seed=5)
    project = copy_dbt_project(tmp_path / "dbt_project")
    edit_yaml(
        project / "models" / "staging" / "_sources.yml",
        lambda d: _orders_source(d)["config"]["meta"].update(drift_policy=policy),
    )
    return make_settings(
        tmp_path / "home", ELT_SOURCES_DIR=str(sources), ELT_PROJECT_DIR=str(project)
    )


def _build(settings):
    return build_environment(settings, STAGING, selection=["raw/orders"])


def _orders_file(settings):
    return sorted((settings.sources_dir / "orders").glob("orders-0*.parquet"))[0]


def _rows(settings, sql):
    con = open_warehouse(settings).catalogs.connect(STAGING)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_quarantine_loads_good_rows_diverts_bad_ones_and_replays_after_a_fix(tmp_path):
    settings = _install(tmp_path, "quarantine")
    assert _build(settings).success
    before = _rows(settings, "SELECT count(*) FROM raw.orders")[0][0]

    good = pq.read_table(_orders_file(settings)).slice(0, 6)
    good = good.set_column(0, "order_id", pc.add(good["order_id"], 50_000))
    rows = good.to_pylist()
    rows[1]["status"] = "lost"  # not an allowed value
    rows[2]["quantity"] = 0  # below minimum
    rows[3]["order_id"] = None  # null key
    rows[5] = dict(rows[4])  # duplicate key
    pq.write_table(
        pa.Table.from_pylist(rows, schema=good.schema),
        settings.sources_dir / "orders" / "orders-late-00001.parquet",
    )

    outcome = _build(settings)
    assert outcome.success, outcome.error
    wh = open_warehouse(settings)
    loaded = _rows(settings, "SELECT count(*) FROM raw.orders")[0][0] - before
    quarantine = dict(_rows(settings, "SELECT reason, count(*) FROM quarantine.orders GROUP BY 1"))
    assert quarantine == {
        "status not an allowed value": 1,
        "quantity below minimum 1.0": 1,
        "null key in order_id": 1,
        "duplicate key in batch": 1,
    }
    assert loaded == 2 and loaded + sum(quarantine.values()) == len(rows)  # exact accounting
    position = _rows(
        settings, "SELECT source_position FROM quarantine.orders WHERE reason LIKE 'status%'"
    )
    assert position[0][0] == "orders/orders-late-00001.parquet:2"  # file and row in it
    alerts = [json.loads(line) for line in (wh.root / "alerts.jsonl").read_text().splitlines()]
    assert [a["kind"] for a in alerts] == ["quarantine"] and alerts[0][
        "owner"
    ] == "team:data-platform"

    # A re-run reads nothing new: same versions, no duplicate quarantine rows, no new alert.
    pointers = wh.environments.pointers(STAGING)
    assert _build(settings).success
    assert wh.environments.pointers(STAGING) == pointers
    assert len((wh.root / "alerts.jsonl").read_text().splitlines()) == 1

    # The owner decides `lost` is a valid status: fix the contract (its dbt YAML), replay.
    def allow_lost(data: dict) -> None:
        table = _orders_source(data)
        status = next(c for c in table["columns"] if c["name"] == "status")
        accepted = next(t for t in status["data_tests"] if isinstance(t, dict))
        accepted["accepted_values"]["arguments"]["values"].append("lost")
        table["config"]["meta"]["contract_version"] = "1.1.0"

    edit_yaml(settings.dbt_project_dir / "models" / "staging" / "_sources.yml", allow_lost)
    prepare_manifest(load_dbt_project(settings))
    contract = contracts_for(settings)["raw/orders"]
    source = next(s for s in load_sources(settings) if s.name == "orders")
    result = replay_quarantine(wh, source, contract, STAGING, actor="test")
    assert (result.replayed, result.loaded, result.still_quarantined) == (4, 1, 3)
    assert _rows(settings, "SELECT count(*) FROM raw.orders WHERE status = 'lost'")[0][0] == 1
    assert _rows(settings, "SELECT count(*) FROM quarantine.orders")[0][0] == 3
    after = wh.environments.pointers(STAGING)
    again = replay_quarantine(wh, source, contract, STAGING, actor="test")
    assert again.loaded == 0 and wh.environments.pointers(STAGING) == after  # idempotent
    assert any(e.kind == "quarantine.replayed" for e in wh.ledger.entries())


@pytest.mark.parametrize("policy", ["freeze", "evolve"])
def test_a_new_source_column_fails_under_freeze_and_is_recorded_under_evolve(tmp_path, policy):
    settings = _install(tmp_path, policy)
    assert _build(settings).success
    wh = open_warehouse(settings)
    before = wh.environments.pointers(STAGING)
    extra = pq.read_table(_orders_file(settings)).slice(0, 3)
    extra = extra.set_column(0, "order_id", pc.add(extra["order_id"], 70_000))
    extra = extra.append_column("channel", pa.array(["web", "app", "web"]))
    pq.write_table(extra, settings.sources_dir / "orders" / "orders-late-00002.parquet")
    outcome = _build(settings)
    if policy == "freeze":
        assert not outcome.success
        assert "schema frozen by contract: new columns channel" in outcome.error
        assert wh.environments.pointers(STAGING) == before
    else:
        assert outcome.success, outcome.error
        assert outcome.assets["raw/orders"].checks_failed == 0
        assert _rows(settings, "SELECT count(channel) FROM raw.orders")[0][0] == 3
