"""A third-party dbt project (views, seeds, an incremental model reading `{{ this }}`, a YAML
snapshot, an ephemeral model, a unit test, a two-parent singular test, a vendored package, partial
YAML, no meta) runs the whole cycle from an untouched copy: staging twice (the second build
recomputes nothing), promote, sandbox -> edit -> build -> diff, staging recomputes only the change,
promote it, roll back. The platform writes nothing into the project but dbt's own target/. The
first release is built with no platform file at all; before the sandbox, the team declares its
unclassified columns `internal` in a platform file kept outside the project."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.launch.runs import (
    build_environment,
    load_definitions,
    promote_via_sensor,
    rollback_via_job,
)
from elt_platform.launch.sandboxes import build_sandbox, plan_build
from elt_platform.orchestration.instance import open_instance
from elt_platform.sandboxes.create import create_sandbox
from elt_platform.sandboxes.env_diff import diff_sides, primary_keys, resolve_side
from elt_platform_tests.projects.conftest import classify_unclassified, host_project, tree_digest

SANDBOX = "ride_exp"
EPHEMERAL = "models/intermediate/int_rentals_enriched.sql"
EDIT = (
    "    invoices.payment_method\n",
    "    coalesce(invoices.payment_method, 'none') as payment_method\n",
)
DBT_ASSETS = {
    "raw_invoices", "raw_rentals", "raw_riders", "raw_stations",
    "stg_invoices", "stg_rentals", "stg_riders", "stg_stations",
    "fct_rentals", "dim_riders", "dim_stations", "station_daily_usage", "stations_snapshot",
}  # fmt: skip
# fct_rentals inlines the edited ephemeral model; its readers follow.
RECOMPUTED = {"fct_rentals", "station_daily_usage", "dim_riders"}


def recomputed(wh, run_id: str) -> set[str]:
    return {b.asset for b in wh.builds.in_run(run_id) if b.reused_from is None}


def reused(wh, run_id: str) -> set[str]:
    return {b.asset for b in wh.builds.in_run(run_id) if b.reused_from is not None}


def loaded_at(wh, asset: str, version_id: str) -> dict[int, object]:
    version = wh.versions.get(asset, version_id)
    con = duckdb.connect()
    try:
        rows = con.execute(f"SELECT rental_id, loaded_at FROM {version.scan_sql}").fetchall()
    finally:
        con.close()
    return dict(rows)


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    """Run the whole cycle once; the tests below read what each step left behind."""
    settings = host_project(tmp_path_factory.mktemp("foreign"))
    project = settings.dbt_project_dir
    wh = open_warehouse(settings)
    out: dict = {"settings": settings, "pristine": tree_digest(project)}
    out["first"] = build_environment(settings, "staging")
    assert out["first"].success, out["first"].error
    out["pointers_first"] = wh.environments.pointers("staging")
    out["second"] = build_environment(settings, "staging")
    assert out["second"].success, out["second"].error
    out["pointers_second"] = wh.environments.pointers("staging")
    out["checks_second"] = {
        asset: wh.builds.checks(build)
        for asset, build in wh.environments.pointer_builds("staging").items()
    }
    out["promoted"] = promote_via_sensor(settings, actor="test")
    out["after_platform"] = tree_digest(project)
    # With no platform file every column is unclassified, so a sandbox would see it masked; the
    # team classifies them from outside the project to compare real values in its sandbox.
    settings = out["settings"] = classify_unclassified(settings, tmp_path_factory.mktemp("team"))

    create_sandbox(wh, SANDBOX, owner="ana@example.com", instance=open_instance(settings))
    model = project / EPHEMERAL
    text = model.read_text()
    assert EDIT[0] in text
    model.write_text(text.replace(EDIT[0], EDIT[1]))
    out["edited"] = tree_digest(project)
    load_definitions.cache_clear()  # the code location reloads after a code change
    out["sandbox_plan"] = plan_build(settings, SANDBOX)
    out["sandbox"] = build_sandbox(settings, SANDBOX)
    assert out["sandbox"].outcome and out["sandbox"].outcome.success, out["sandbox"].outcome
    out["diff"] = diff_sides(
        wh, resolve_side(wh, "prod"), resolve_side(wh, SANDBOX), keys=primary_keys(settings)
    )
    out["staging_plan"] = plan_build(settings, "staging")
    out["third"] = build_environment(settings, "staging")
    assert out["third"].success, out["third"].error
    out["promoted_change"] = promote_via_sensor(settings, actor="test")
    out["rollback"] = rollback_via_job(settings, out["promoted"].release_id, actor="test")
    out["final"] = tree_digest(project)
    return out


def test_every_resource_kind_builds_and_a_second_build_recomputes_nothing(cycle):
    wh = open_warehouse(cycle["settings"])
    first, second = cycle["first"], cycle["second"]
    assert set(cycle["pointers_first"]) == DBT_ASSETS  # views, seeds, snapshot, incremental...
    assert recomputed(wh, first.run_id) == DBT_ASSETS
    assert recomputed(wh, second.run_id) == set() and reused(wh, second.run_id) == DBT_ASSETS
    # fct_rentals stamps current_timestamp: only reuse makes the second build idempotent.
    assert cycle["pointers_second"] == cycle["pointers_first"]
    # The unit test, the two-parent singular test and generic tests are gates of the builds.
    checks = cycle["checks_second"]
    for asset in ("station_daily_usage", "stg_invoices"):  # the two-parent test gates both
        assert checks[asset]["assert_station_revenue_matches_invoices"].passed, asset
    assert checks["dim_riders"]["test_dim_riders_segments_and_spend"].passed
    assert checks["fct_rentals"]["unique_fct_rentals_rental_id"].passed
    # Reused builds carry their checks over: the second run shows them on the partition too.
    instance = open_instance(cycle["settings"])
    evaluations = [
        r.dagster_event.event_specific_data
        for r in instance.all_logs(
            second.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]
    assert evaluations and all(e.passed for e in evaluations)
    assert {e.check_name for e in evaluations} >= {
        "assert_station_revenue_matches_invoices",
        "test_dim_riders_segments_and_spend",
    }


def test_the_first_release_promotes_with_every_gate_passed(cycle):
    promoted = cycle["promoted"]
    assert promoted.requested and promoted.success, promoted.reason
    release = open_warehouse(cycle["settings"]).releases.get(promoted.release_id)
    assert release.manifest == cycle["pointers_second"]
    assert release.gate_summary["checks_failed"] == 0 and release.gate_summary["checks_passed"] > 20


def test_the_sandbox_recomputes_the_edited_models_incremental_from_the_release(cycle):
    wh = open_warehouse(cycle["settings"])
    plan, build = cycle["sandbox_plan"], cycle["sandbox"]
    assert set(plan.rebuild) == RECOMPUTED
    assert plan.decisions["fct_rentals"].reason == "code changed"  # an ephemeral model changed
    assert recomputed(wh, build.outcome.run_id) == RECOMPUTED
    release = wh.releases.get(cycle["promoted"].release_id).manifest
    sandbox = wh.environments.pointers(SANDBOX)
    # The incremental's first sandbox build merged into the release's version: rows outside the
    # 3-day lookback keep the release's load time, the reprocessed window has a new one.
    before = loaded_at(wh, "fct_rentals", release["fct_rentals"])
    after = loaded_at(wh, "fct_rentals", sandbox["fct_rentals"])
    assert set(after) == set(before)
    kept = [r for r in after if after[r] == before[r]]
    assert kept and len(kept) < len(after)
    # Readers of fct_rentals recompute to identical content: same version ids as the release.
    assert sandbox["station_daily_usage"] == release["station_daily_usage"]
    assert sandbox["dim_riders"] == release["dim_riders"]
    tables = {t.asset: t for t in cycle["diff"].tables}
    assert tables["fct_rentals"].changed and tables["fct_rentals"].changed < len(after)
    assert tables["fct_rentals"].column_changes.get("payment_method")
    assert tables["dim_riders"].identical and tables["stg_invoices"].identical


def test_staging_recomputes_only_the_change_and_plan_equals_build(cycle):
    wh = open_warehouse(cycle["settings"])
    plan, third = cycle["staging_plan"], cycle["third"]
    assert set(plan.rebuild) == RECOMPUTED
    assert recomputed(wh, third.run_id) == set(plan.rebuild)
    assert reused(wh, third.run_id) == DBT_ASSETS - RECOMPUTED
    # Staging's incremental saw its own previous version.
    before = loaded_at(wh, "fct_rentals", cycle["pointers_second"]["fct_rentals"])
    after = loaded_at(wh, "fct_rentals", wh.environments.pointers("staging")["fct_rentals"])
    assert any(after[r] == before[r] for r in after) and after != before


def test_the_change_promotes_then_rolls_back(cycle):
    wh = open_warehouse(cycle["settings"])
    change = cycle["promoted_change"]
    assert change.success, change.reason
    assert set(change.changed_assets) == {"fct_rentals"}  # its readers kept their content
    assert cycle["rollback"].success
    assert (
        wh.environments.pointers("prod") == wh.releases.get(cycle["promoted"].release_id).manifest
    )


def test_the_platform_writes_nothing_into_the_project(cycle):
    assert cycle["after_platform"] == cycle["pristine"]
    assert cycle["final"] == cycle["edited"]
    project = cycle["settings"].dbt_project_dir
    assert not (project / "dbt_packages" / "tiny_utils").is_symlink()
    assert (project / "dbt_packages" / "tiny_utils" / "macros" / "minutes_between.sql").exists()
    assert not list(project.glob("*.duckdb"))


def test_the_failing_two_parent_test_blocks_promotion_and_names_itself(cycle):
    settings = cycle["settings"]
    project = settings.dbt_project_dir
    wh = open_warehouse(settings)
    model = project / "models" / "marts" / "station_daily_usage.sql"
    original = model.read_text()
    assert "sum(amount_eur)  " in original
    model.write_text(original.replace("sum(amount_eur)  ", "sum(amount_eur) * 2"))
    load_definitions.cache_clear()
    try:
        failed = build_environment(settings, "staging")
        assert not failed.success
        assert "assert_station_revenue_matches_invoices failed" in failed.error
        prod = wh.environments.pointers("prod")
        blocked = promote_via_sensor(settings)
        assert not blocked.requested
        assert f"run {failed.run_id} failed: " in blocked.reason
        assert "check assert_station_revenue_matches_invoices failed" in blocked.reason
        assert wh.environments.pointers("prod") == prod
    finally:
        model.write_text(original)
        load_definitions.cache_clear()
