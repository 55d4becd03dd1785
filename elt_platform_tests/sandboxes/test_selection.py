"""The one planner over a real metadata store: code, inputs, referenced vars and the build's own
history (its run, masked inputs) decide, in sandboxes and staging alike."""

from __future__ import annotations

import duckdb

from elt_platform.builds.planner import plan_environment
from elt_platform.project.manifest import vars_read
from elt_platform.store.warehouse import Warehouse

DEPS = {"raw/a": [], "b": ["raw/a"], "c": ["b"]}
CODE = {"raw/a": "c1", "b": "m1", "c": "n1"}


def _write(wh, asset, sql, *, env="staging", run_id="good", **record):
    con = duckdb.connect()
    try:
        return wh.versions.write_query(con, asset, sql, environment=env, run_id=run_id, **record)
    finally:
        con.close()


def _warehouse(tmp_path):
    """A release of raw/a -> b -> c built with code c1/m1/n1, b reading var x = 1."""
    wh = Warehouse(tmp_path / "warehouse")
    a = _write(wh, "raw/a", "SELECT 1 AS v", code_version="c1")
    b = _write(
        wh,
        "b",
        "SELECT 2 AS v",
        code_version="m1",
        inputs={"raw/a": a.version_id},
        params={"vars": {"x": 1}},
    )
    c = _write(wh, "c", "SELECT 3 AS v", code_version="n1", inputs={"b": b.version_id})
    wh.commit_pointers("staging", {"raw/a": a, "b": b, "c": c}, run_id="good")
    release = wh.publish("staging", triggered_by="test").release
    wh.environments.create_sandbox(
        "exp", base_release=release.release_id, pointers=release.manifest, builds=release.builds
    )
    return wh, release.manifest


def _plan(wh, env="exp", *, code=None, x=1, assets=("raw/a", "b", "c"), failed=()):
    return plan_environment(
        wh,
        env,
        list(assets),
        deps=DEPS,
        code_versions={**CODE, **(code or {})},
        var_values={"b": {"x": x}},
        failed_runs=lambda run_ids: set(failed) & set(run_ids),
    )


def test_unchanged_assets_resolve_to_the_release_builds(tmp_path):
    wh, manifest = _warehouse(tmp_path)
    plan = _plan(wh)
    assert plan.rebuild == [] and plan.reuse == manifest
    assert plan.reuse_builds == wh.releases.current().builds


def test_a_code_change_rebuilds_the_asset_and_everything_downstream(tmp_path):
    wh, manifest = _warehouse(tmp_path)
    plan = _plan(wh, code={"b": "m2"})
    assert plan.rebuild == ["b", "c"] and plan.reuse == {"raw/a": manifest["raw/a"]}
    assert plan.decisions["b"].reason == "code changed"
    assert plan.decisions["c"].reason == "upstream b is rebuilt"


def test_a_changed_var_rebuilds_only_models_that_read_it(tmp_path):
    wh, _ = _warehouse(tmp_path)
    plan = _plan(wh, x=2)
    assert plan.rebuild == ["b", "c"] and plan.decisions["b"].reason == "var x changed"
    node = {"raw_code": "select {{ var('x') }}, {{ var(\"y\", 3) }} from t"}
    assert vars_read(node) == {"x", "y"}


def test_a_changed_input_pointer_rebuilds_its_readers(tmp_path):
    wh, _ = _warehouse(tmp_path)
    other = _write(wh, "raw/a", "SELECT 9 AS v", env="exp", code_version="c1")
    wh.environments.set_pointers("exp", {"raw/a": other.version_id}, run_id=None)
    plan = _plan(wh, assets=("b", "c"))
    assert plan.rebuild == ["b", "c"] and plan.decisions["b"].reason == "input raw/a changed"


def test_a_sandbox_rebuild_with_identical_content_is_its_own_build_and_reused_next_time(
    tmp_path,
):
    wh, manifest = _warehouse(tmp_path)
    # b rebuilt in the sandbox with new code came out byte-identical (same version id): it is a
    # build of its own (sandbox, masked inputs, code m2), which the next sandbox plan reuses.
    b2 = _write(
        wh,
        "b",
        "SELECT 2 AS v",
        env="exp",
        code_version="m2",
        inputs={"raw/a": manifest["raw/a"]},
        params={"vars": {"x": 1}},
        masked=True,
    )
    assert b2.version_id == manifest["b"] and b2.build_id != wh.releases.current().builds["b"]
    wh.environments.set_pointers(
        "exp", {"b": b2.version_id}, run_id="good", builds={"b": b2.build_id}
    )
    plan = _plan(wh, code={"b": "m2"})
    assert plan.rebuild == [] and plan.reuse_builds["b"] == b2.build_id
    # Staging never reuses a build computed on masked data, even of identical content.
    wh.environments.set_pointers(
        "staging", {"b": b2.version_id}, run_id=None, builds={"b": b2.build_id}
    )
    staging = _plan(wh, "staging", code={"b": "m2"})
    assert staging.rebuild == ["b", "c"]
    assert staging.decisions["b"].reason == "its build was computed on masked data"


def test_staging_reuses_its_own_builds_and_recomputes_only_the_changed_model(tmp_path):
    wh, manifest = _warehouse(tmp_path)
    plan = _plan(wh, "staging", code={"c": "n2"})
    assert plan.rebuild == ["c"] and plan.decisions["c"].reason == "code changed"
    assert plan.reuse == {"raw/a": manifest["raw/a"], "b": manifest["b"]}
    assert plan.reuse_builds == {
        a: wh.environments.pointer_builds("staging")[a] for a in ("raw/a", "b")
    }


def test_builds_of_a_failed_or_canceled_run_are_never_reused(tmp_path):
    wh, _ = _warehouse(tmp_path)
    plan = _plan(wh, "staging", failed={"good"})
    assert plan.rebuild == ["raw/a", "b", "c"]
    assert plan.decisions["raw/a"].reason == "its build's run good failed or was canceled"


def test_a_reused_build_carries_its_checks_and_names_its_origin(tmp_path):
    from elt_platform.store.builds import CheckOutcome

    wh, _ = _warehouse(tmp_path)
    origin = wh.builds.get(wh.environments.pointer_builds("staging")["b"])
    wh.builds.record_checks(origin.build_id, [CheckOutcome("unique_v", "passed", True)])
    reused = wh.builds.reuse(origin, environment="staging", run_id="next")
    assert reused.build_id != origin.build_id and reused.reused_from == origin.build_id
    assert (reused.version_id, reused.code_version, reused.inputs) == (
        origin.version_id,
        origin.code_version,
        origin.inputs,
    )
    carried = wh.builds.checks(reused.build_id)["unique_v"]
    assert carried.passed and carried.carried_from == origin.build_id
    assert wh.builds.origin(reused).build_id == origin.build_id
    # Reusing a reuse names the build that computed the content, not a growing chain.
    again = wh.builds.reuse(reused, environment="staging", run_id="later")
    assert again.reused_from == origin.build_id
    assert wh.builds.checks(again.build_id)["unique_v"].carried_from == origin.build_id
