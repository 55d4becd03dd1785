"""Retention keeps the warehouse consistent: rows referencing expired rows go with them (along the
project's relationships, where the data lives too), what was derived from removed rows is
recomputed in staging, and the pipeline keeps running: the next staging build passes every dbt
test, promotion succeeds, and no live version or kept release holds an orphan or expired row."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, time, timedelta

import duckdb
import pytest

from elt_platform.environments import PROD, STAGING
from elt_platform.governance.aggregates import release_private_aggregate
from elt_platform.governance.retention import cutoff, enforce_retention, retention_rule
from elt_platform.launch.retention import enforce_and_recompute
from elt_platform.launch.runs import rollback_via_job
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.project.policies import Policies
from elt_platform.project.project_file import load_policies
from elt_platform.project.relationships import load_relationships
from elt_platform.sandboxes.create import create_sandbox
from elt_platform.sqlident import quote_ident
from elt_platform_tests.conftest import edit_yaml, run_cli
from elt_platform_tests.governance.conftest import as_identity
from elt_platform_tests.sandboxes.conftest import copy_dbt_project

SHORT = 400  # days, for orders, payments and what is derived from them


def _shortened(settings, tmp_path):
    """`settings` on a copy of the dbt project whose 2555-day periods (orders, payments and what
    is derived from them) are 400 days, as a data steward would shorten them."""
    project = copy_dbt_project(tmp_path / "dbt_project")
    changed_files = 0
    for path in (project / "models").rglob("*.yml"):
        text = path.read_text()
        shortened = re.sub(r"retention: 2555d", f"retention: {SHORT}d", text)
        changed_files += shortened != text
        path.write_text(shortened)
    assert changed_files >= 3
    changed = dataclasses.replace(settings, dbt_project_dir=project)
    prepare_manifest(load_dbt_project(changed))
    return changed


def _straddling_now(wh) -> datetime:
    """A "today" whose cutoff falls between an order and its late payment (the issue's case):
    the order expires, the payment on its own column would not."""
    prod = wh.resolve(PROD)
    con = duckdb.connect()
    try:
        first_kept = con.execute(
            "SELECT CAST(o.ordered_at AS DATE) + 1 FROM "
            f"{prod['raw/orders'].scan_sql} o JOIN {prod['raw/payments'].scan_sql} p USING "
            "(order_id) WHERE CAST(p.paid_at AS DATE) > CAST(o.ordered_at AS DATE) "
            "ORDER BY abs(datediff('day', o.ordered_at, TIMESTAMP '2025-01-01')) LIMIT 1"
        ).fetchone()[0]
    finally:
        con.close()
    return datetime.combine(first_kept, time(), UTC) + timedelta(days=SHORT)


def _rules(settings, policies: Policies, now: datetime) -> dict[str, tuple[str, str]]:
    """asset -> (date column, first kept instant) of every asset with a dated retention rule."""
    contracts = contracts_for(settings)
    out = {}
    for asset in contracts:
        rule = retention_rule(asset, policies, contracts)
        if not isinstance(rule, str):
            out[asset] = (rule.column, cutoff(now, rule.period).isoformat(sep=" "))
    return out


def _violations(wh, manifest: dict[str, str], rules, relationships) -> list[str]:
    """Expired rows and orphans (child key whose parent row is missing) in one set of versions."""
    found = []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        scans = {a: wh.versions.get(a, v).scan_sql for a, v in manifest.items()}
        for asset, (column, first_kept) in rules.items():
            if asset in scans:
                n = con.execute(
                    f"SELECT count(*) FROM {scans[asset]} WHERE CAST({quote_ident(column)} AS "
                    f"TIMESTAMP) < TIMESTAMP '{first_kept}'"
                ).fetchone()[0]
                if n:
                    found.append(f"{asset}: {n} expired")
        for r in relationships.acyclic():
            if r.child in scans and r.parent in scans:
                child, parent = quote_ident(r.child_column), quote_ident(r.parent_column)
                n = con.execute(
                    f"SELECT count(*) FROM {scans[r.child]} c WHERE c.{child} IS NOT NULL AND "
                    f"c.{child} NOT IN (SELECT {parent} FROM {scans[r.parent]} WHERE {parent} "
                    "IS NOT NULL)"
                ).fetchone()[0]
                if n:
                    found.append(f"{r}: {n} orphans")
    finally:
        con.close()
    return found


def _stg_payments_relationship_test(wh) -> str:
    build_id = wh.environments.pointer_builds(STAGING)["stg_payments"]
    checks = wh.builds.checks(wh.builds.origin(wh.builds.get(build_id)).build_id)
    names = [n for n in checks if n.startswith("relationships_stg_payments_order_id")]
    assert names, f"no relationships test recorded: {sorted(checks)}"
    return checks[names[0]].status


@pytest.fixture
def shortened(installation, tmp_path):
    """The installation with periods shortened, two kept releases, a sandbox and a private
    aggregate released before retention."""
    settings = _shortened(installation, tmp_path)
    wh = as_identity(settings, "eve@example.com", "engineer")
    first = wh.releases.current()
    create_sandbox(wh, "exp", owner="ann@example.com", actor="test")
    release_private_aggregate(wh, dataset="orders_by_region_month", consumer="partner", epsilon=0.5)
    assert wh.releases.current().release_id != first.release_id
    return settings, wh, first, _straddling_now(wh)


def test_retention_cascades_recomputes_and_the_pipeline_keeps_running(shortened, record_property):
    settings, wh, first, now = shortened
    relationships = load_relationships(settings)
    rules = _rules(settings, load_policies(settings), now)
    first_kept = rules["raw/orders"][1]
    assert first_kept == rules["stg_payments"][1] == f"{(now - timedelta(SHORT)).date()} 00:00:00"
    before = {
        e.name: _violations(wh, wh.environments.pointers(e.name), rules, relationships)
        for e in wh.environments.list()
    }
    assert any(v for v in before.values()), "nothing expires: the test would prove nothing"

    run = enforce_and_recompute(wh, now=now)
    report = run.report

    # Direct and cascaded removals, both real; the payments cascade is named where it was
    # declared (staging models) and where the data lives (raw tables).
    assert report.rows_expired > 0 and report.rows_cascaded > 0
    record_property("rows_expired", report.rows_expired)
    record_property("rows_cascaded", report.rows_cascaded)
    cascaded = {str(c.relationship): c for c in report.cascades}
    for name in (
        "stg_payments.order_id -> stg_orders.order_id",
        "raw/payments.order_id -> raw/orders.order_id",
    ):
        assert cascaded[name].rows > 0 and cascaded[name].parent_keys > 0, name
    assert cascaded["raw/payments.order_id -> raw/orders.order_id"].relationship.lifted_from
    assert not report.problems
    assert report.stale_aggregates and report.stale_aggregates[0].startswith(
        "dp_partner/orders_by_region_month@"
    )

    # The proof lists each cascade: relationship, versions, counts; never a value.
    entry = wh.ledger.entries(kind="retention.deleted")[-1]
    assert entry.seq == report.ledger_seq and wh.ledger.verify().ok
    assert entry.params["rows_cascaded"] == report.rows_cascaded > 0
    assert entry.params["cascades"], "nothing to check"
    version_ids = {r.old_version for r in report.rewrites}
    for proof in entry.params["cascades"]:
        assert set(proof) == {
            "relationship",
            "action",
            "declared_by",
            "lifted_from",
            "parent_keys",
            "rows",
            "versions",
        }
        assert proof["rows"] == sum(v["rows"] for v in proof["versions"]) > 0
        for v in proof["versions"]:
            assert set(v) == {"version", "rows"} and v["version"] in version_ids
    assert "@" not in json.dumps(entry.params)

    # The dedicated recompute run rebuilt what was derived from rewritten versions, from the
    # retained rows (no customer keeps a first order from before the cutoff) and passed its gates.
    assert run.outcome is not None and run.outcome.success, run.outcome and run.outcome.error
    assert {"customers", "int_orders_enriched", "stg_payments"} <= set(run.recompute)
    assert not {"raw/orders", "raw/payments"} & set(run.recompute)
    recomputed = {a for a, o in run.outcome.assets.items() if o.recomputed}
    assert "customers" in recomputed and run.outcome.checks_failed == 0
    staging = wh.resolve(STAGING)
    con = duckdb.connect()
    try:
        early = con.execute(
            f"SELECT count(*) FROM {staging['customers'].scan_sql} "
            f"WHERE first_order_at < TIMESTAMP '{first_kept}'"
        ).fetchone()[0]
    finally:
        con.close()
    assert early == 0

    # The pipeline keeps running on unchanged code: a full staging build passes every dbt test
    # (the payments relationships test included), and promotion succeeds.
    build = run_cli(settings, "build", STAGING)
    assert build.returncode == 0, build.stdout + build.stderr
    assert _stg_payments_relationship_test(wh) == "passed"
    promoted = run_cli(settings, "promote")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert (
        wh.environments.pointers(PROD)["customers"]
        == wh.environments.pointers(STAGING)["customers"]
    )

    # No orphan and no expired row in any live version: every environment, every kept release,
    # and prod after rolling back to the oldest kept release.
    environments = wh.environments.list()
    releases = [r for r in wh.releases.list() if not r.collected_at]
    assert len(environments) >= 3 and len(releases) >= 3
    for record in environments:
        pointers = wh.environments.pointers(record.name)
        assert _violations(wh, pointers, rules, relationships) == [], record.name
    for release in releases:
        assert _violations(wh, release.manifest, rules, relationships) == [], release.release_id
    oldest = min(releases, key=lambda r: r.seq)
    assert oldest.release_id == first.release_id
    assert rollback_via_job(settings, oldest.release_id, actor="test").success
    prod = wh.environments.pointers(PROD)
    assert prod == wh.releases.get(oldest.release_id).manifest
    assert _violations(wh, prod, rules, relationships) == []


def test_a_child_may_anonymize_instead_of_delete(installation, tmp_path):
    """`on_parent_expired: anonymize` on stg_payments.order_id: payments of expired orders stay,
    their order reference is set to NULL (in the raw table it was followed to, too)."""
    settings = _shortened(installation, tmp_path)
    yml = settings.dbt_project_dir / "models" / "staging" / "_staging.yml"

    def anonymize(data):
        payments = next(m for m in data["models"] if m["name"] == "stg_payments")
        order_id = next(c for c in payments["columns"] if c["name"] == "order_id")
        order_id["config"]["meta"]["on_parent_expired"] = "anonymize"

    edit_yaml(yml, anonymize)
    prepare_manifest(load_dbt_project(settings))
    wh = as_identity(settings, "eve@example.com", "engineer")
    now = _straddling_now(wh)
    first_kept = f"{(now - timedelta(SHORT)).date()}"
    con = duckdb.connect()
    try:
        prod = wh.resolve(PROD)
        expected = {  # rows that are not expired themselves: all of them stay
            a: con.execute(
                f"SELECT count(*) FROM {prod[a].scan_sql} WHERE paid_at >= TIMESTAMP '{first_kept}'"
            ).fetchone()[0]
            for a in ("raw/payments", "stg_payments")
        }
        report = enforce_retention(wh, contracts_for(settings), now=now)
        after = wh.resolve(PROD)
        for asset, rows in expected.items():
            nulls = con.execute(
                f"SELECT count(*) FROM {after[asset].scan_sql} WHERE order_id IS NULL"
            ).fetchone()[0]
            assert nulls > 0 and after[asset].rows == rows < prod[asset].rows, asset
    finally:
        con.close()
    assert report.rows_expired > 0 and report.rows_cascaded == 0 and report.rows_anonymized > 0
    actions = {str(c.relationship): c.relationship.on_parent_expired for c in report.cascades}
    assert actions == {
        "stg_payments.order_id -> stg_orders.order_id": "anonymize",
        "raw/payments.order_id -> raw/orders.order_id": "anonymize",
    }


def test_cli_dry_run_shows_direct_and_cascaded_rows_and_what_to_recompute(installation, tmp_path):
    settings = _shortened(installation, tmp_path)
    wh = as_identity(settings, "eve@example.com", "engineer")
    before = wh.resolve(PROD)
    as_of = _straddling_now(wh).date().isoformat()
    out = run_cli(settings, "governance", "retention", "--dry-run", "--as-of", as_of, check=True)
    summary = re.search(r"would remove ([\d,]+) rows: ([\d,]+) expired directly, ([\d,]+) by cascade",
                        out.stdout)  # fmt: skip
    assert summary, out.stdout
    removed, expired, cascaded = (int(g.replace(",", "")) for g in summary.groups())
    assert removed == expired + cascaded and expired > 0 and cascaded > 0
    assert "cascade raw/payments.order_id -> raw/orders.order_id (delete)" in out.stdout
    assert re.search(r"to recompute in staging: .*customers.* \(dry run\)", out.stdout)
    assert wh.resolve(PROD) == before  # a dry run changes nothing
