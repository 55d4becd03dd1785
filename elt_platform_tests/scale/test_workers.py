"""Runs on several workers: launched from the UI, runs wait in the daemon's queue and Dagster's
default launcher starts each in a process of its own. Those processes share nothing but
PostgreSQL (Dagster's storage and the metadata store) and the version storage. Builds of two
sandboxes and staging run side by side, while two builds of one sandbox wait for each other
(the queue allows one run per environment partition; the environment lock backs it up)."""

from __future__ import annotations

import itertools
import re

import psycopg2
import pytest

from elt_platform.launch.runs import build_environment, promote_via_sensor
from elt_platform.orchestration.instance import open_instance
from elt_platform.orchestration.names import BUILD_JOB
from elt_platform_tests.conftest import make_settings, run_cli
from elt_platform_tests.sandboxes.conftest import copy_dbt_project
from elt_platform_tests.ui.conftest import serving_elt_dev

pytestmark = pytest.mark.scale

SANDBOX_MODELS = ["int_orders_enriched", "orders"]
PID = re.compile(r"Started process for run \(pid: (\d+)\)")


@pytest.fixture
def installation(tmp_path, sources_dir, demo_api):
    """An installation on the test server with prod on release 1 and two sandboxes."""
    project = copy_dbt_project(tmp_path / "dbt_project")
    settings = make_settings(
        tmp_path / "home", ELT_SOURCES_DIR=str(sources_dir), ELT_PROJECT_DIR=str(project)
    )
    assert settings.metadata_url and settings.metadata_url.startswith("postgresql")
    outcome = build_environment(settings, "staging")
    assert outcome.success, outcome.error
    assert promote_via_sensor(settings, actor="test").success
    for name in ("w1", "w2"):
        run_cli(settings, "sandbox", "create", name, "--ttl", "1d", check=True)
    return settings


def _overlap(a, b) -> bool:
    return a.start_time < b.end_time and b.start_time < a.end_time


def test_parallel_builds_run_in_separate_workers_one_writer_per_environment(installation):
    with serving_elt_dev(installation) as ui:
        gql = ui.gql
        launched = {
            "w1 first": gql.launch(
                BUILD_JOB, assets=SANDBOX_MODELS, tags={"dagster/partition": "w1"}
            ),
            "w1 second": gql.launch(
                BUILD_JOB, assets=SANDBOX_MODELS, tags={"dagster/partition": "w1"}
            ),
            "w2": gql.launch(BUILD_JOB, assets=SANDBOX_MODELS, tags={"dagster/partition": "w2"}),
            "staging": gql.launch(BUILD_JOB, tags={"dagster/partition": "staging"}),
        }
        finished = {what: gql.wait_run(run_id, timeout=1200) for what, run_id in launched.items()}
        for what, run in finished.items():
            assert run["status"] == "SUCCESS", f"{what}: {gql.run_messages_text(run)}"
        pids = {}
        for what, run_id in launched.items():
            found = [m for m in map(PID.search, gql.run_messages(run_id)) if m]
            assert found, f"{what}: no worker process recorded"
            pids[what] = int(found[0].group(1))
        dev_pids = (installation.home / "dev.pid").read_text().split()  # removed when it stops

    # Each run had a worker process of its own, outside the webserver and the daemon.
    assert len(set(pids.values())) == len(launched), pids
    assert not set(map(str, pids.values())) & set(dev_pids)

    # The run records live in PostgreSQL; their times show what ran side by side.
    instance = open_instance(installation)
    records = {what: instance.get_run_record_by_id(rid) for what, rid in launched.items()}
    assert all(r.start_time and r.end_time for r in records.values())
    assert not _overlap(records["w1 first"], records["w1 second"]), "w1 had two writers at once"
    others = [records["w1 first"], records["w2"], records["staging"]]
    assert any(_overlap(a, b) for a, b in itertools.combinations(others, 2)), (
        "no two environments were built in parallel"
    )
    con = psycopg2.connect(installation.metadata_url)
    try:
        with con.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM runs WHERE run_id = ANY(%s) AND status = 'SUCCESS'",
                (list(launched.values()),),
            )
            assert cur.fetchone()[0] == len(launched)
    finally:
        con.close()

    # Both w1 builds committed, one after the other: the sandbox serves the last one's versions.
    out = run_cli(installation, "env", "show", "w1", check=True).stdout
    assert "int_orders_enriched" in out
