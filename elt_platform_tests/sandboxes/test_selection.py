"""The rebuild plan over a real metadata store: code, inputs and referenced vars decide."""

from __future__ import annotations

import duckdb

from elt_platform.builds.planner import Lineage, plan_rebuild, record_lineage
from elt_platform.project.manifest import vars_read
from elt_platform.store.warehouse import Warehouse

DEPS = {"raw/a": [], "b": ["raw/a"], "c": ["b"]}


def _warehouse(tmp_path):
    """A release of raw/a -> b -> c built with code c1/m1/n1, b reading var x = 1."""
    wh = Warehouse(tmp_path / "warehouse")
    con = duckdb.connect()
    try:
        a = wh.versions.write_query(
            con, "raw/a", "SELECT 1 AS v", environment="staging", code_version="c1"
        )
        b = wh.versions.write_query(
            con,
            "b",
            "SELECT 2 AS v",
            environment="staging",
            code_version="m1",
            inputs={"raw/a": a.version_id},
            params={"vars": {"x": 1}},
        )
        c = wh.versions.write_query(
            con,
            "c",
            "SELECT 3 AS v",
            environment="staging",
            code_version="n1",
            inputs={"b": b.version_id},
        )
    finally:
        con.close()
    wh.commit_pointers("staging", {"raw/a": a, "b": b, "c": c}, run_id=None)
    release = wh.publish("staging", triggered_by="test").release
    wh.environments.create_sandbox(
        "exp", base_release=release.release_id, pointers=release.manifest
    )
    return wh, release.manifest


def _plan(wh, manifest, *, code=None, x=1):
    code = {"raw/a": "c1", "b": "m1", "c": "n1", **(code or {})}
    return plan_rebuild(
        wh.meta,
        ["raw/a", "b", "c"],
        environment="exp",
        deps=DEPS,
        code_versions=code,
        var_values={"b": {"x": x}},
        pointers=wh.environments.pointers("exp"),
        base=manifest,
    )


def test_unchanged_assets_resolve_to_the_release_versions(tmp_path):
    wh, manifest = _warehouse(tmp_path)
    plan = _plan(wh, manifest)
    assert plan.rebuild == [] and plan.reuse == manifest


def test_a_code_change_rebuilds_the_asset_and_everything_downstream(tmp_path):
    wh, manifest = _warehouse(tmp_path)
    plan = _plan(wh, manifest, code={"b": "m2"})
    assert plan.rebuild == ["b", "c"] and plan.reuse == {"raw/a": manifest["raw/a"]}
    assert plan.decisions["b"].reason == "code changed"
    assert plan.decisions["c"].reason == "upstream b is rebuilt"


def test_a_changed_var_rebuilds_only_models_that_read_it(tmp_path):
    wh, manifest = _warehouse(tmp_path)
    plan = _plan(wh, manifest, x=2)
    assert plan.rebuild == ["b", "c"] and plan.decisions["b"].reason == "var x changed"
    node = {"raw_code": "select {{ var('x') }}, {{ var(\"y\", 3) }} from t"}
    assert vars_read(node) == {"x", "y"}


def test_a_changed_input_pointer_rebuilds_its_readers(tmp_path):
    wh, manifest = _warehouse(tmp_path)
    con = duckdb.connect()
    try:
        other = wh.versions.write_query(
            con, "raw/a", "SELECT 9 AS v", environment="exp", code_version="c1"
        )
    finally:
        con.close()
    wh.environments.set_pointers("exp", {"raw/a": other.version_id}, run_id=None)
    plan = plan_rebuild(
        wh.meta,
        ["b", "c"],
        environment="exp",
        deps=DEPS,
        code_versions={"b": "m1", "c": "n1"},
        var_values={"b": {"x": 1}},
        pointers=wh.environments.pointers("exp"),
        base=manifest,
    )
    assert plan.rebuild == ["b", "c"] and plan.decisions["b"].reason == "input raw/a changed"


def test_a_sandbox_rebuild_with_identical_content_is_recognised_next_time(tmp_path):
    wh, manifest = _warehouse(tmp_path)
    # b was rebuilt in the sandbox with new code and came out byte-identical (same version id);
    # c, rebuilt from it, also kept its id. Their sandbox lineage makes the next plan reuse them.
    record_lineage(
        wh.meta,
        "exp",
        {
            ("b", manifest["b"]): Lineage("m2", {"raw/a": manifest["raw/a"]}, {"vars": {"x": 1}}),
            ("c", manifest["c"]): Lineage("n1", {"b": manifest["b"]}, {}),
        },
    )
    assert _plan(wh, manifest, code={"b": "m2"}).rebuild == []
    assert plan_rebuild(
        wh.meta,
        ["b"],
        environment="other",
        deps=DEPS,
        code_versions={"b": "m2"},
        var_values={"b": {"x": 1}},
        pointers=manifest,
        base=manifest,
    ).rebuild == ["b"]
