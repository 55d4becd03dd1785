"""Retention: after enforcement no row older than the cutoff is readable through any environment
or any kept release, rollback cannot bring one back, and the ledger holds the proof (counts,
version ids, cutoffs; never values)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import PROD, STAGING
from elt_platform.errors import AccessDenied, UnknownVersion
from elt_platform.governance.retention import enforce_retention, retention_rule
from elt_platform.launch.runs import load_definitions
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.project_file import load_policies
from elt_platform.sandboxes.create import create_sandbox
from elt_platform.settings import load_settings
from elt_platform.sqlident import quote_ident
from elt_platform.store.releases import manifest_hash
from elt_platform_tests.conftest import direct_sql
from elt_platform_tests.governance.conftest import as_identity, with_yaml_edit, yaml_node

# Orders start on 2024-01-01 and are kept 2555 days: this "today" expires about a quarter of them.
NOW = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=2555 + 180)


def _expired(con, relation: str, column: str, cutoff: str) -> int:
    sql = (
        f"SELECT count(*) FROM {relation} "
        f"WHERE CAST({quote_ident(column)} AS TIMESTAMP) < TIMESTAMP '{cutoff}'"
    )
    return con.execute(sql).fetchone()[0]


def _metadata_state(settings) -> tuple:
    return tuple(
        tuple(
            tuple(r.values())
            for r in direct_sql(settings, (f"SELECT * FROM {t} ORDER BY 1, 2",), bypass=False)
        )
        for t in ("versions", "env_pointers", "release_entries", "ledger")
    )


@pytest.fixture
def history(installation):
    """Two kept releases with different `orders` versions, a sandbox, and an unreferenced version
    of `orders`: every place an expired row can hide."""
    wh = as_identity(installation, "eve@example.com", "engineer")
    create_sandbox(wh, "exp", owner="ann@example.com", actor="test")
    first = wh.releases.current()
    orders = wh.resolve(PROD)["orders"]
    con = duckdb.connect()
    try:
        changed = wh.versions.write_query(
            con,
            "orders",
            f"SELECT * FROM {orders.scan_sql} WHERE status <> 'returned'",
            environment=STAGING,
            run_id="test",
        )
        orphan = wh.versions.write_query(
            con,
            "orders",
            f"SELECT * FROM {orders.scan_sql} WHERE quantity > 1",
            environment=STAGING,
            run_id="test",
        )
    finally:
        con.close()
    wh.commit_pointers(STAGING, {"orders": changed}, run_id="test")
    second = wh.publish(STAGING, triggered_by="test").release
    assert first.manifest["orders"] != second.manifest["orders"]
    return wh, first, second, orphan


def test_retention_removes_expired_rows_from_every_environment_and_kept_release(
    installation, history
):
    wh, first, second, orphan = history
    steward = as_identity(installation, "sue@example.com", "steward")
    contracts = contracts_for(installation)

    before = _metadata_state(installation)
    preview = enforce_retention(steward, contracts, now=NOW, dry_run=True)
    assert preview.rows_removed > 0 and _metadata_state(installation) == before

    report = enforce_retention(steward, contracts, now=NOW)
    assert report.rows_removed == preview.rows_removed
    cutoffs = report.cutoffs
    assert cutoffs["orders"] == "2024-06-29T00:00:00"  # midnight, 2555 days before NOW
    rules = {a: retention_rule(a, load_policies(load_settings()), contracts) for a in cutoffs}

    # Through every environment's catalog (the sandbox's masked one included).
    assert wh.environments.list(), "nothing to check"
    for record in wh.environments.list():
        con = wh.catalogs.connect(record.name)
        try:
            for asset, relation in con.execute(
                "SELECT asset, relation FROM _elt.pointers"
            ).fetchall():
                if asset in rules:
                    column = rules[asset].column
                    assert _expired(con, relation, column, cutoffs[asset]) == 0, (record, asset)
            assert con.execute("SELECT count(*) FROM main.orders").fetchone()[0] > 0
        finally:
            con.close()
    # In every kept release, and after rolling prod back to the oldest one.
    scan = duckdb.connect()
    assert wh.releases.list(), "nothing to check"
    for release in wh.releases.list():
        for asset, version_id in release.manifest.items():
            if asset in rules:
                version = wh.versions.get(asset, version_id)
                assert _expired(scan, version.scan_sql, rules[asset].column, cutoffs[asset]) == 0
        assert release.release_id in {first.release_id, second.release_id}
        assert manifest_hash(release.manifest) == _stored_hash(installation, release.release_id)
    wh.rollback(first.release_id, actor="test")
    con = wh.catalogs.connect(PROD)
    try:
        assert _expired(con, "main.orders", "order_date", cutoffs["orders"]) == 0
        assert _expired(con, "raw.orders", "ordered_at", cutoffs["raw/orders"]) == 0
    finally:
        con.close()

    # Old versions are gone from the store and the disk; the unreferenced one was deleted too.
    rewritten = {(r.asset, r.old_version): r for r in report.rewrites}
    assert ("orders", first.manifest["orders"]) in rewritten
    assert ("orders", second.manifest["orders"]) in rewritten
    assert rewritten[("orders", orphan.version_id)].new_version is None
    assert rewritten, "nothing to check"
    for asset, old in rewritten:
        with pytest.raises(UnknownVersion):
            wh.versions.get(asset, old)
        assert not (wh.versions.versions_dir / asset.replace("/", "__") / old).exists()
    assert set(rewritten[("orders", first.manifest["orders"])].environments) == {"exp"}
    assert rewritten[("orders", second.manifest["orders"])].environments == [PROD, STAGING]

    # Provenance and incremental state follow the rewritten versions: every recorded input still
    # exists, and the connector's state moved to the new raw version (no full re-read next time).
    for version in wh.versions.list():
        for asset, version_id in wh.versions.record(version.asset, version.version_id)[
            "inputs"
        ].items():
            wh.versions.get(asset, version_id)
    raw_orders = next(r for r in report.rewrites if r.asset == "raw/orders")
    rows = direct_sql(
        installation,
        (
            "SELECT version_id, count(*) AS n FROM connector_state WHERE asset = 'raw/orders'"
            " GROUP BY version_id",
        ),
        bypass=False,
    )
    states = {r["version_id"]: r["n"] for r in rows}
    assert states.get(raw_orders.new_version) == 1 and raw_orders.old_version not in states

    # The proof: counts, version ids and cutoffs, never a value.
    entry = wh.ledger.entries(kind="retention.deleted")[-1]
    assert entry.seq == report.ledger_seq and entry.actor == "user:sue@example.com"
    assert entry.params["cutoffs"] == cutoffs and entry.params["rows_removed"] > 0
    proof_keys = {
        "asset",
        "old_version",
        "new_version",
        "rows_before",
        "rows_removed",
        "rows_expired",
        "rows_cascaded",
        "rows_anonymized",
        "environments",
        "releases",
    }
    assert entry.params["versions"], "nothing to check"
    for proof in entry.params["versions"]:
        assert set(proof) == proof_keys
        assert isinstance(proof["rows_removed"], int) and proof["rows_removed"] > 0
    assert set(entry.params) == {
        "as_of",
        "cutoffs",
        "rows_removed",
        "rows_expired",
        "rows_cascaded",
        "rows_anonymized",
        "versions",
        "release_manifests",
        "cascades",
        "problems",
    }
    assert "@" not in json.dumps(entry.params)  # no e-mail (or any other value) recorded
    assert wh.ledger.verify().ok

    # Enforcing again finds nothing to remove and records nothing.
    again = enforce_retention(steward, contracts, now=NOW)
    assert again.rows_removed == 0 and again.ledger_seq is None
    assert len(wh.ledger.entries(kind="retention.deleted")) == 1


def _stored_hash(settings, release_id: str) -> str:
    return direct_sql(
        settings,
        ("SELECT manifest_hash FROM releases WHERE release_id = ?", (release_id,)),
        bypass=False,
    )[0]["manifest_hash"]


def test_analysts_may_not_enforce_retention_and_nothing_changes(installation):
    before = _metadata_state(installation)
    analyst = as_identity(installation, "ann@example.com", "analyst")
    with pytest.raises(AccessDenied, match="may not enforce retention"):
        enforce_retention(analyst, contracts_for(installation), now=NOW)
    after = _metadata_state(installation)
    assert after[:3] == before[:3] and len(after[3]) == len(before[3]) + 1


def test_retention_job_runs_as_the_schedule_steward(installation, tmp_path):
    """The Dagster job (what `daily_retention` launches) with today's date: a policy that keeps
    int_orders_enriched only 30 days expires every one of its rows, and nothing else."""
    installation = with_yaml_edit(
        installation,
        tmp_path,
        "intermediate/_intermediate.yml",
        lambda d: yaml_node(d, "int_orders_enriched")["config"]["meta"].update(retention="30d"),
    )
    defs = load_definitions(installation)
    assert defs.resolve_schedule_def("daily_retention").job_name == "enforce_retention"
    wh = open_warehouse(installation)
    before = wh.resolve(PROD)
    schedule = defs.resolve_schedule_def("daily_retention")
    result = defs.resolve_job_def("enforce_retention").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags=schedule.tags,  # as the schedule launches it
    )
    assert result.success
    after = wh.resolve(PROD)
    assert after["int_orders_enriched"].rows == 0 < before["int_orders_enriched"].rows
    assert {a for a in after if after[a].version_id != before[a].version_id} == {
        "int_orders_enriched"
    }
    entry = wh.ledger.entries(kind="retention.deleted")[-1]
    assert entry.actor == "schedule:retention"
