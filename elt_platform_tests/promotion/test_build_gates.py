"""Promotion trusts builds, not content: a failing two-parent singular test blocks and names itself,
a failed or canceled run blocks, staging recomputes only what changed (as planned), and the
analyst path sandbox -> staging -> promote goes through because staging's build of the same
content is its own (unmasked) build, while the sandbox's build of a PII model never promotes."""

from __future__ import annotations

import dagster as dg
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.launch.runs import (
    build_environment,
    load_definitions,
    promote_via_sensor,
)
from elt_platform.launch.sandboxes import build_sandbox, plan_build
from elt_platform.orchestration.instance import open_instance
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.project_file import load_promotion_policy
from elt_platform.promotion.candidate import evaluate_candidate
from elt_platform.sandboxes.create import create_sandbox
from elt_platform_tests.conftest import make_settings, run_cli
from elt_platform_tests.sandboxes.conftest import copy_dbt_project

REVENUE = "models/marts/daily_revenue.sql"
ENRICHED = "models/intermediate/int_orders_enriched.sql"
RECONCILE = "assert_daily_revenue_reconciles_with_orders"
DBT_MODELS = 8


def _edit(project, relative, old, new):
    path = project / relative
    text = path.read_text()
    assert old in text, relative
    path.write_text(text.replace(old, new))
    load_definitions.cache_clear()  # the code location reloads after a code change
    return text


def _recomputed(wh, run_id):
    return {b.asset for b in wh.builds.in_run(run_id) if b.reused_from is None}


@pytest.fixture(scope="module")
def demo(tmp_path_factory, sources_dir, demo_api):
    """Staging built from a copy of the demo project and promoted by the sensor (release 1)."""
    root = tmp_path_factory.mktemp("build_gates")
    project = copy_dbt_project(root / "dbt_project")
    settings = make_settings(
        root / "home", ELT_SOURCES_DIR=str(sources_dir), ELT_DBT_PROJECT_DIR=str(project)
    )
    first = build_environment(settings, "staging")
    assert first.success, first.error
    promoted = promote_via_sensor(settings, actor="test")
    assert promoted.success, promoted.reason
    return settings, project, promoted.release_id


def test_a_failing_multi_parent_test_blocks_promotion_and_names_itself(demo):
    settings, project, release_id = demo
    wh = open_warehouse(settings)
    # Returned orders drop out of daily revenue but stay in the orders mart: only the
    # reconciliation (a singular test reading both) catches it.
    original = _edit(
        project,
        REVENUE,
        "where status <> 'cancelled'",
        "where status not in ('cancelled', 'returned')",
    )
    try:
        failed = build_environment(settings, "staging")
        assert not failed.success and RECONCILE in failed.error
        # The test reads daily_revenue and orders: it gates both builds.
        for asset in ("daily_revenue", "orders"):
            build = wh.environments.pointer_builds("staging")[asset]
            assert not wh.builds.checks(build)[RECONCILE].passed, asset
        staging = wh.environments.pointers("staging")
        blocked = promote_via_sensor(settings)
        assert not blocked.requested
        assert f"run {failed.run_id} failed: " in blocked.reason and RECONCILE in blocked.reason
        assert f"daily_revenue: check {RECONCILE} failed" in blocked.reason
        # A rerun of the sensor after the refusal changes nothing.
        again = promote_via_sensor(settings)
        assert again.reason == blocked.reason
        assert wh.releases.current().release_id == release_id
        assert wh.environments.pointers("prod") == wh.releases.get(release_id).manifest
        assert wh.environments.pointers("staging") == staging
        cli = run_cli(settings, "promote")
        assert cli.returncode == 1 and f"run {failed.run_id} failed" in cli.stdout
    finally:
        (project / REVENUE).write_text(original)
        load_definitions.cache_clear()
    fixed = build_environment(settings, "staging")
    assert fixed.success, fixed.error
    # Builds of the failed run are never reused: daily_revenue is computed again.
    assert "daily_revenue" in _recomputed(wh, fixed.run_id)


def test_a_canceled_run_blocks_promotion_and_its_builds_are_never_reused(demo):
    settings, project, release_id = demo
    wh = open_warehouse(settings)
    original = _edit(  # new content (averages rounded down), every test still passes
        project, REVENUE, "round(sum(order_amount) / count(*), 2)",
        "floor(sum(order_amount) * 100 / count(*)) / 100",
    )  # fmt: skip
    try:
        built = build_environment(settings, "staging")
        assert built.success, built.error
        assert "daily_revenue" in _recomputed(wh, built.run_id)
        instance = open_instance(settings)
        # Canceled after its dbt step committed the pointers (e.g. while a later step ran).
        instance.report_run_canceled(instance.get_run_by_id(built.run_id))
        blocked = promote_via_sensor(settings)
        assert not blocked.requested
        assert f"run {built.run_id} was canceled" in blocked.reason
        assert wh.releases.current().release_id == release_id
        # Same code again: what the canceled run computed is computed again, the rest reused.
        again = build_environment(settings, "staging")
        assert again.success, again.error
        recomputed = _recomputed(wh, again.run_id)
        assert "daily_revenue" in recomputed and "orders" not in recomputed
    finally:
        (project / REVENUE).write_text(original)
        load_definitions.cache_clear()


def test_the_analyst_path_promotes_and_staging_recomputes_only_the_change(demo):
    settings, project, _ = demo
    wh = open_warehouse(settings)
    create_sandbox(wh, "bulk", owner="ana@example.com", instance=open_instance(settings))
    _edit(
        project, ENRICHED, "    orders.updated_at\nfrom orders",
        "    orders.updated_at,\n    orders.quantity >= 5 as is_bulk_order\nfrom orders",
    )  # fmt: skip
    _edit(  # the analyst documents the new column (the demo's governance policy is strict)
        project, "models/intermediate/_intermediate.yml", "    columns:\n",
        "    columns:\n      - name: is_bulk_order\n        description: Five items or more.\n"
        "        config:\n          meta: {sensitivity: internal}\n",
    )  # fmt: skip
    sandbox = build_sandbox(settings, "bulk")
    assert sandbox.outcome and sandbox.outcome.success, sandbox.outcome
    # A new column no downstream model reads (column lineage): only the model is recomputed.
    changed = {"int_orders_enriched"}
    assert set(sandbox.plan.rebuild) == changed
    for asset in ("customers", "orders", "daily_revenue"):
        decision = sandbox.plan.decisions[asset]
        assert not decision.rebuild and "non-breaking" in decision.reason, decision

    plan = plan_build(settings, "staging")
    built = build_environment(settings, "staging")
    assert built.success, built.error
    recomputed = _recomputed(wh, built.run_id)
    assert set(plan.rebuild) == recomputed - {a for a in recomputed if "/" in a}
    assert changed <= set(plan.rebuild)
    for asset in ("customers", "orders"):
        assert "non-breaking" in plan.decisions[asset].reason, plan.decisions[asset]
    for asset in set(plan.rebuild) - changed:  # an earlier test reverted daily_revenue's code
        assert plan.decisions[asset].reason == "code changed", plan.decisions[asset]
    reused = {b.asset for b in wh.builds.in_run(built.run_id) if b.reused_from}
    assert len(reused) == DBT_MODELS - len(plan.rebuild)
    again = plan_build(settings, "staging")  # later plans accept the non-breaking input change
    assert again.rebuild == [], again.decisions
    # Same content as the sandbox's build (no PII read), yet a build of its own, unmasked.
    staging = wh.environments.pointers("staging")
    assert staging["int_orders_enriched"] == wh.environments.pointers("bulk")["int_orders_enriched"]
    build = wh.builds.get(wh.environments.pointer_builds("staging")["int_orders_enriched"])
    assert build.environment == "staging" and not build.masked
    promoted = promote_via_sensor(settings, actor="test")
    assert promoted.success, promoted.reason
    assert "int_orders_enriched" in promoted.changed_assets
    release = wh.releases.current()
    assert release.builds["int_orders_enriched"] == build.build_id
    event = open_instance(settings).get_latest_materialization_event(
        dg.AssetKey("int_orders_enriched")
    )
    assert event.asset_materialization.metadata["build_id"].value == build.build_id


def test_a_pii_model_promotes_from_staging_but_never_from_its_sandbox_build(demo):
    settings, _, _ = demo
    wh = open_warehouse(settings)
    instance = open_instance(settings)
    graph = load_definitions(settings).resolve_asset_graph()
    policy = load_promotion_policy(settings)
    contracts = contracts_for(settings)
    from_staging = evaluate_candidate(wh, instance, graph, policy, contracts)
    assert not [p for p in from_staging.problems if "masked" in p], from_staging.problems
    assert wh.environments.pointers("prod")["customers"] == from_staging.manifest["customers"]
    sandbox_policy = policy.model_copy(update={"source_environment": "bulk"})
    from_sandbox = evaluate_candidate(wh, instance, graph, sandbox_policy, contracts)
    # The analyst's edit is non-breaking for customers, which keeps the release's build in the
    # sandbox; what the sandbox computed (on masked inputs) is the edited model.
    computed = "int_orders_enriched"
    sandbox_build = wh.environments.pointer_builds("bulk")[computed]
    expected = (
        f"{computed}: version {wh.environments.pointers('bulk')[computed]} (build "
        f"{sandbox_build}) was computed on masked data in a sandbox"
    )
    assert any(p.startswith(expected) for p in from_sandbox.problems), from_sandbox.problems
    assert wh.builds.get(sandbox_build).masked


def test_a_change_to_a_column_downstream_models_read_recomputes_them(demo):
    settings, project, _ = demo
    original = _edit(  # same values, other expression: every reader of order_amount recomputes
        project, ENRICHED, "cast(orders.quantity * orders.unit_price as decimal(18, 2))",
        "cast(orders.unit_price * orders.quantity as decimal(18, 2))",
    )  # fmt: skip
    try:
        plan = plan_build(settings, "staging")
        readers = {"customers", "orders", "daily_revenue"}
        assert set(plan.rebuild) == {"int_orders_enriched", *readers}
        for asset in readers:
            assert plan.decisions[asset].reason == "upstream int_orders_enriched is rebuilt"
    finally:
        (project / ENRICHED).write_text(original)
        load_definitions.cache_clear()
