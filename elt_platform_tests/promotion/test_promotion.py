"""Write-audit-publish through the real sensor and jobs: gates block, releases promote, rollback
of a subset takes its downstream, GC never deletes a referenced version."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from elt_demo.api import serving_demo_api
from elt_demo.sources import ensure_synthetic_sources
from elt_platform.access.facade import open_warehouse
from elt_platform.environments import PROD, STAGING
from elt_platform.errors import ReleaseCollected
from elt_platform.launch.runs import (
    build_environment,
    load_definitions,
    promote_via_sensor,
    rollback_via_job,
)
from elt_platform.orchestration.instance import open_instance
from elt_platform.orchestration.names import PROD_RELEASE_ASSET, ROLLBACK_JOB
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.promotion.gc import collect_garbage
from elt_platform_tests.conftest import edit_yaml, make_settings
from elt_platform_tests.sandboxes.conftest import copy_dbt_project


@pytest.fixture(scope="module")
def promo(tmp_path_factory):
    """An installation with release 1 (2,000 orders) promoted by the sensor."""
    root = tmp_path_factory.mktemp("promo")
    sources = {}
    sources[2_000] = root / "sources"
    ensure_synthetic_sources(sources[2_000], rows=2_000, seed=11)
    # New data arriving: the same landing folder plus a file of 200 new (cancelled) orders.
    sources["more"] = root / "sources_more"
    shutil.copytree(sources[2_000], sources["more"])
    first_file = sorted((sources["more"] / "orders").glob("orders-0*.parquet"))[0]
    extra = pq.read_table(first_file).slice(0, 200)
    extra = extra.set_column(0, "order_id", pc.add(extra["order_id"], 1_000_000))
    status = extra.schema.get_field_index("status")
    extra = extra.set_column(status, "status", pa.array(["cancelled"] * 200))
    pq.write_table(extra, sources["more"] / "orders" / "orders-extra-00000.parquet")
    settings = make_settings(root / "home", ELT_SOURCES_DIR=str(sources[2_000]))
    outcome = _build(settings)
    assert outcome.success, outcome.error
    first = promote_via_sensor(settings, actor="test")
    assert first.requested and first.success, first.reason
    return settings, sources, first


def _with_sources(settings, path):
    return dataclasses.replace(settings, sources_dir=path)


def _build(settings):
    """Build staging from `settings.sources_dir`, with the demo payments API serving it."""
    with serving_demo_api(settings.sources_dir):
        return build_environment(settings, STAGING)


def test_sensor_promotes_a_release_whose_gates_passed(promo):
    settings, _, first = promo
    wh = open_warehouse(settings)
    assert wh.environments.pointers(PROD) == wh.environments.pointers(STAGING)
    release = wh.releases.current()
    assert release.release_id == first.release_id
    assert release.triggered_by == "test" and release.code_version
    assert release.gate_summary["checks_failed"] == 0 and release.gate_summary["checks_passed"] > 0
    # The prod partition's materialization history is the promotion history.
    instance = open_instance(settings)
    event = instance.get_latest_materialization_event(dg.AssetKey("orders"))
    mat = event.asset_materialization
    assert mat.partition == PROD
    assert mat.metadata["release"].value == first.release_id
    assert mat.metadata["version_id"].value == release.manifest["orders"]
    run = instance.get_run_by_id(first.run_id)
    assert run.tags["elt/target_environment"] == PROD
    assert run.tags["elt/source_environment"] == STAGING
    # Nothing new to promote: the sensor skips and says why.
    again = promote_via_sensor(settings)
    assert not again.requested
    assert again.reason.startswith("nothing to promote: prod already serves staging's versions")


def test_a_failing_gate_blocks_promotion_and_says_why(promo, tmp_path):
    settings, sources, first = promo
    bad_dir = tmp_path / "bad_sources"
    shutil.copytree(sources[2_000], bad_dir)
    csv = bad_dir / "products" / "products.csv"
    header, first_row, *rest = csv.read_text().splitlines()
    fields = first_row.split(",")
    fields[-1] = "-5.00"  # a negative list price violates the raw/products contract (min 0.01)
    csv.write_text("\n".join([header, ",".join(fields), *rest]) + "\n")
    bad = _with_sources(settings, bad_dir)
    outcome = _build(bad)
    wh = open_warehouse(settings)
    try:
        assert "contract" in outcome.assets["raw/products"].failed_checks
        blocked = promote_via_sensor(bad)
        assert not blocked.requested
        assert blocked.reason.startswith("blocked: ")
        assert "raw/products: check contract failed" in blocked.reason
        assert "1 rows violate contract raw/products" in blocked.reason  # the failing-rows detail
        assert wh.releases.current().release_id == first.release_id
        assert wh.environments.pointers(PROD) == wh.releases.get(first.release_id).manifest
    finally:  # restore staging for the following tests
        assert _build(settings).success


def test_rollback_of_a_subset_also_rolls_back_its_downstream(promo):
    settings, sources, first = promo
    bigger = _with_sources(settings, sources["more"])
    assert _build(bigger).success
    second = promote_via_sensor(bigger)
    assert second.success, second.reason
    wh = open_warehouse(settings)
    r1 = wh.releases.get(first.release_id).manifest
    r2 = wh.releases.get(second.release_id).manifest
    assert r1["raw/orders"] != r2["raw/orders"]

    result = rollback_via_job(settings, first.release_id, assets=["stg_orders"], actor="test")
    assert result.success
    prod = wh.environments.pointers(PROD)
    for asset in ["stg_orders", "int_orders_enriched", "orders", "customers", "daily_revenue"]:
        assert prod[asset] == r1[asset], asset
    for asset in ["raw/orders", "stg_customers", "raw/customers"]:
        assert prod[asset] == r2[asset], asset
    # Full rollback to release 2 and back again is a pointer move recorded as a Dagster run.
    full = rollback_via_job(settings, second.release_id, actor="test")
    assert full.success and wh.environments.pointers(PROD) == r2


def test_staging_materializations_carry_throughput_failure_rate_and_freshness(promo):
    """Numbers Dagster plots per partition: rows/s, recent failure rate, hours since the
    previous update against the contract's `freshness.max_lag` (24h for these two)."""
    settings, _, _ = promo
    instance = open_instance(settings)
    for asset in ("raw/customers", "customers"):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey.from_user_string(asset), asset_partitions=[STAGING]
            ),
            limit=1,
        ).records
        assert records, asset
        md = records[0].asset_materialization.metadata
        assert md["rows_per_second"].value > 0, asset
        assert 0 <= md["failure_rate_recent"].value < 1, asset
        assert 0 <= md["freshness_lag_hours"].value < 1, asset  # rebuilt minutes before
        assert md["freshness_sla_hours"].value == 24, asset
        assert md["freshness_sla_met"].value == 1, asset


def test_every_prod_move_is_a_prod_release_materialization_and_rollback_defaults_to_previous(
    promo,
):
    settings, _, first = promo
    wh = open_warehouse(settings)
    instance = open_instance(settings)
    current = wh.releases.current()  # release 2, rolled back to by the previous test
    assert current.release_id != first.release_id

    def release_events():
        records = instance.fetch_materializations(dg.AssetKey(PROD_RELEASE_ASSET), limit=50)
        return [r.asset_materialization for r in records.records]

    events = release_events()
    assert events, "no prod_release materialization"
    latest = events[0].metadata
    assert latest["release"].value == current.release_id
    assert latest["action"].value == "rollback" and latest["triggered_by"].value == "test"
    assert f"| raw/orders | `{current.manifest['raw/orders']}` |" in latest["served"].value
    promoted = [m.metadata for m in events if m.metadata["action"].value == "promote"]
    assert first.release_id in {m["release"].value for m in promoted}
    assert all(m["checks_failed"].value == 0 and m["checks_passed"].value > 0 for m in promoted)
    # Launched with no config at all (the launchpad's default), it goes back one release.
    job = load_definitions(settings).resolve_job_def(ROLLBACK_JOB)
    identity = {"elt/user": "ops@example.com", "elt/role": "engineer"}
    result = job.execute_in_process(instance=instance, tags=identity, raise_on_error=False)
    assert result.success
    assert wh.releases.current().release_id == first.release_id
    assert wh.environments.pointers(PROD) == wh.releases.get(first.release_id).manifest
    newest = release_events()[0].metadata
    assert newest["release"].value == first.release_id
    assert newest["previous_release"].value == current.release_id
    assert newest["run_id"].value == result.run_id
    assert newest["changed_assets"].value != "-"
    # Staging still holds release 2's versions: not promoted again, and the tick says why.
    again = promote_via_sensor(settings)
    assert not again.requested
    assert again.reason == (
        f"nothing to promote: staging's versions are release {current.release_id}, which prod "
        f"was rolled back from; launch rollback_prod with release_id {current.release_id} to "
        "serve it again"
    )
    # Back to release 2 for the following tests.
    assert rollback_via_job(settings, current.release_id, actor="test").success


def test_gc_keeps_referenced_versions_and_refuses_collected_releases(promo):
    settings, _, first = promo
    wh = open_warehouse(settings)
    wh.environments.create_sandbox("gc_probe", base_release=first.release_id, pointers={})
    # A newer release that prod then leaves: the release in between is now neither the newest,
    # prod's, nor a sandbox base, so GC must collect it (prod itself stays where it was).
    current = wh.releases.current()
    base = wh.releases.get(first.release_id).manifest
    asset = next(a for a, v in base.items() if current.manifest.get(a) != v)
    wh.publish_versions({asset: base[asset]}, source_environment="test", triggered_by="test")
    wh.rollback(current.release_id, actor="test")
    before_files = {p for p in (wh.root / "versions").rglob("*.parquet")}
    report = collect_garbage(wh, keep=1, grace=timedelta(0), actor="test")
    kept = set(report.kept_releases)
    assert first.release_id in kept  # a sandbox is based on it
    assert wh.releases.current().release_id in kept
    referenced = set()
    for env in wh.environments.list():
        referenced |= {(a, v) for a, v in wh.environments.pointers(env.name).items()}
    for rid in kept:
        referenced |= set(wh.releases.get(rid).manifest.items())
    assert referenced, "nothing to check"
    for asset, vid in referenced:  # every referenced version still resolves to files
        assert wh.versions.get(asset, vid).path.exists()
    deleted = set(report.deleted_versions)
    assert deleted and not (deleted & referenced)
    assert len({p for p in (wh.root / "versions").rglob("*.parquet")}) < len(before_files)
    assert report.collected_releases, "nothing to check"
    for rid in report.collected_releases:
        before = wh.environments.pointers(PROD)
        with pytest.raises(ReleaseCollected) as refused:
            rollback_via_job(settings, rid, actor="test")
        assert wh.environments.pointers(PROD) == before
        # The refusal names the releases that can still be rolled back to, not prod's own.
        assert first.release_id in refused.value.hint and rid not in refused.value.hint
        assert wh.releases.current().release_id not in refused.value.hint


def test_versions_computed_on_masked_sandbox_data_never_reach_prod(promo):
    import duckdb

    settings, _, _ = promo
    wh = open_warehouse(settings)
    staging = wh.environments.pointers(STAGING)
    source = wh.versions.get("stg_customers", staging["stg_customers"])
    con = duckdb.connect()
    try:  # what a sandbox build records for a model computed on masked inputs
        version = wh.versions.write_query(
            con,
            "stg_customers",
            f"SELECT * REPLACE ('masked' AS email) FROM {source.scan_sql}",
            environment="masked_probe",
            run_id=None,
            code_version="x",
            inputs={"raw/customers": staging["raw/customers"]},
            params={"pii_masked": True},
            masked=True,
        )
    finally:
        con.close()
    before = wh.releases.current().release_id
    wh.environments.set_pointers(STAGING, {"stg_customers": version.version_id}, run_id=None)
    try:
        blocked = promote_via_sensor(settings)
        assert not blocked.requested
        assert (
            f"stg_customers: version {version.version_id} (build {version.build_id}) was "
            "computed on masked data" in blocked.reason
        )
        assert wh.releases.current().release_id == before
    finally:
        wh.environments.set_pointers(
            STAGING, {"stg_customers": staging["stg_customers"]}, run_id=None
        )


def test_breaking_contract_change_is_blocked_then_accepted_with_a_major_bump(promo, tmp_path):
    """The contract is the dbt YAML: tightening a raw column's range is breaking until the table's
    `meta.contract_version` gets a major bump and a `migration_note`."""
    settings, sources, _ = promo
    project = copy_dbt_project(tmp_path / "dbt_project")
    newer = tmp_path / "sources_newer"  # new data, so there is something to promote
    shutil.copytree(sources["more"], newer)
    extra = pq.read_table(newer / "orders" / "orders-extra-00000.parquet")
    extra = extra.set_column(0, "order_id", pc.add(extra["order_id"], 1_000_000))
    pq.write_table(extra, newer / "orders" / "orders-extra-00001.parquet")
    sources_yml = project / "models" / "staging" / "_sources.yml"

    def orders_table(data: dict) -> dict:
        return next(t for t in data["sources"][0]["tables"] if t["name"] == "orders")

    def tighten(data: dict) -> None:  # tightened: breaking (the data still satisfies it)
        quantity = next(c for c in orders_table(data)["columns"] if c["name"] == "quantity")
        quantity["config"]["meta"]["constraints"]["max"] = 100

    edit_yaml(sources_yml, tighten)
    changed = dataclasses.replace(settings, dbt_project_dir=project, sources_dir=newer)
    assert _build(changed).success
    wh = open_warehouse(settings)
    before = wh.releases.current().release_id

    blocked = promote_via_sensor(changed)
    assert not blocked.requested
    assert "raw/orders: breaking contract change without a major version bump" in blocked.reason
    assert "max tightened" in blocked.reason
    assert wh.releases.current().release_id == before

    def bump(data: dict) -> None:
        meta = orders_table(data)["config"]["meta"]
        meta.update(contract_version="2.0.0", migration_note="quantity above 100 is rejected")

    edit_yaml(sources_yml, bump)
    prepare_manifest(load_dbt_project(changed))  # what `elt dbt prepare` (or any `elt`) does
    accepted = promote_via_sensor(dataclasses.replace(changed))
    assert accepted.requested and accepted.success, accepted.reason
    release = wh.releases.current()
    assert release.release_id != before
    assert release.gate_summary["contracts"]["raw/orders"]["version"] == "2.0.0"
