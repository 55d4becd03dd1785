"""What the Dagster UI shows per environment partition, read through the webserver's GraphQL API
as the UI reads it: refused writes leave prod as it was, a sandbox serves (and records) what it
reused, an ad-hoc partition fails saying how to create the environment, sensor ticks say why."""

from __future__ import annotations

import time

from elt_platform.orchestration.launch_guard import REFUSED_TAG
from elt_platform.orchestration.names import (
    BUILD_JOB,
    CREATE_SANDBOX_JOB,
    PROD_RELEASE_ASSET,
    PROMOTION_SENSOR,
)
from elt_platform_tests.ui.conftest import wait_for

ASSET = "daily_revenue"


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def test_a_prod_write_launched_from_the_ui_is_refused_at_launch_and_prod_stays_materialized(
    dagster_ui,
):
    gql = dagster_ui.gql
    before = gql.partition_status(ASSET)
    assert "prod" in before["materializedPartitions"]  # published by the fixture's promotion
    run_id = gql.launch(BUILD_JOB, assets=[ASSET], tags={"dagster/partition": "prod"})
    run = gql.wait_run(run_id, timeout=60)
    assert run["status"] == "CANCELED"
    tags = _tags(run)
    assert tags[REFUSED_TAG].startswith("assets cannot be materialized directly in 'prod'")
    # The webserver `elt dev` started stamps the developer's identity on untagged launches.
    assert tags.get("elt/user") and tags.get("elt/role")
    assert any(m.startswith("refused at launch, nothing ran") for m in gql.run_messages(run_id))
    after = gql.partition_status(ASSET)
    assert "prod" not in after["failedPartitions"]
    assert "prod" in after["materializedPartitions"]
    # The asset's history is untouched: its latest prod materialization is still the release's.
    latest = gql.materializations(ASSET, "prod", limit=1)
    assert latest and latest[0]["runId"] != run_id


def test_a_launch_whose_identity_may_not_write_the_partition_is_refused_before_it_runs(
    dagster_ui,
):
    gql = dagster_ui.gql
    tags = {"dagster/partition": "staging", "elt/user": "ana@example.com", "elt/role": "analyst"}
    run_id = gql.launch(BUILD_JOB, assets=[ASSET], tags=tags)
    run = gql.wait_run(run_id, timeout=60)
    assert run["status"] == "CANCELED"
    assert "staging" in _tags(run)[REFUSED_TAG]
    assert "staging" not in gql.partition_status(ASSET)["failedPartitions"]
    assert all(m["runId"] != run_id for m in gql.materializations(ASSET, "staging"))


def test_a_sandbox_created_from_the_launchpad_records_every_reused_asset(dagster_ui):
    gql = dagster_ui.gql
    name = "ui_reuse"
    config = {"ops": {"create_sandbox_from_release": {"config": {"name": name, "ttl": "1d"}}}}
    run = gql.wait_run(gql.launch(CREATE_SANDBOX_JOB, run_config=config), timeout=300)
    assert run["status"] == "SUCCESS", gql.run_messages_text(run)
    status = gql.partition_status(ASSET)
    assert name in status["materializedPartitions"]  # not "Missing": it serves prod's data
    mats = gql.materializations(ASSET, name, limit=1)
    assert mats, "no materialization recorded for the sandbox partition"
    release = gql.materializations(PROD_RELEASE_ASSET, limit=1)[0]["metadata"]["release"]
    metadata = mats[0]["metadata"]
    assert metadata["rebuilt"] is False
    assert metadata["reused_from"].startswith(f"release {release}, version ")
    assert metadata["reused_from"].endswith(metadata["version_id"])


def test_an_ad_hoc_partition_fails_before_any_work_saying_how_to_create_the_sandbox(dagster_ui):
    gql = dagster_ui.gql
    key = "typed_in_ui"
    gql.add_partition(key)  # what "create partition" in the materialize dialog does
    run = gql.wait_run(
        gql.launch(BUILD_JOB, assets=[ASSET], tags={"dagster/partition": key}), timeout=300
    )
    assert run["status"] == "FAILURE"
    text = gql.run_messages_text(run)
    assert f"partition '{key}' is not a registered environment" in text
    assert f"elt sandbox create {key}" in text and "create_sandbox" in text
    assert "DagsterInvalidInvocationError" not in text
    # Nothing was built: no materialization of any asset in that partition.
    assert gql.materializations(ASSET, key) == []


def test_promotion_sensor_ticks_say_there_is_nothing_to_promote(dagster_ui):
    gql = dagster_ui.gql
    expected = "nothing to promote: prod already serves staging's versions (release r"

    def idle():
        reasons = [r for r in gql.skip_reasons(PROMOTION_SENSOR, limit=100) if r]
        return [r for r in reasons if r.startswith(expected)]

    # The daemon ticks the sensor every 30 s; prod served staging's versions since the fixture.
    assert wait_for(idle, 180, "a 'nothing to promote' promotion_sensor tick")


def test_a_failed_gate_shows_failed_for_that_partition_and_the_sensor_says_blocked(dagster_ui):
    """Runs last (it leaves staging blocked): a negative list price violates raw/products'
    contract; the contract check fails for the staging partition only, and the promotion
    sensor's next tick after the run finished names it."""
    gql, settings = dagster_ui.gql, dagster_ui.settings
    asset = "raw/products"
    csv = settings.sources_dir / "products" / "products.csv"
    header, first_row, *rest = csv.read_text().splitlines()
    fields = first_row.split(",")
    fields[-1] = "-5.00"
    csv.write_text("\n".join([header, ",".join(fields), *rest]) + "\n")
    started = time.time()
    run_id = gql.launch(BUILD_JOB, assets=[asset], tags={"dagster/partition": "staging"})
    run = gql.wait_run(run_id, timeout=300)
    # The instance holds the run's final status by now: a tick evaluated later must see it. The
    # daemon may have ticked while the run was in flight (staging's pointer had moved, its run
    # "has not finished"), and that tick can still be the latest one here.
    finished = time.time()
    assert run["status"] in ("SUCCESS", "FAILURE"), run["status"]
    contract = gql.check_partition_statuses(asset)["contract"]
    assert "staging" in contract["failedPartitions"]
    assert "prod" not in contract["failedPartitions"]

    def next_tick():
        after = [
            t
            for t in gql.sensor_ticks(PROMOTION_SENSOR)
            if t["timestamp"] > finished and t["status"] != "STARTED"
        ]
        return after[-1] if after else None  # newest first: the first tick after the run

    tick = wait_for(next_tick, 180, f"a promotion_sensor tick evaluated after run {run_id} ended")
    reason = tick["skipReason"] or ""
    elapsed = round(time.time() - started, 1)
    assert reason.startswith("blocked: "), (tick, elapsed)
    assert "raw/products: check contract failed" in reason, (reason, elapsed)
    assert f"run {run_id} has not finished" not in reason, (reason, elapsed)
