"""`elt governance check` passes on the repository's real files and installation, catches seeded
violations (naming the asset/column), and blocks a promotion as a gate."""

from __future__ import annotations

import dataclasses
import re
import shutil
from dataclasses import replace

import duckdb

from elt_platform.access.facade import open_warehouse
from elt_platform.checks.compliance import check_compliance
from elt_platform.environments import STAGING
from elt_platform.launch.runs import load_definitions
from elt_platform.orchestration.instance import open_instance
from elt_platform.project.contracts.files import contracts_for
from elt_platform.project.promotion_policy import load_promotion_policy
from elt_platform.promotion.candidate import evaluate_candidate
from elt_platform.sandboxes.create import create_sandbox
from elt_platform.settings import REPO_ROOT
from elt_platform_tests.conftest import cli_env, run_cli
from elt_platform_tests.governance.conftest import as_identity

POLICY = (REPO_ROOT / "policies.yaml").read_text()


def _rules(report) -> set[tuple[str, str]]:
    return {(v.subject, v.rule) for v in report.violations}


def _with_contract_edit(settings, tmp_path, file: str, old: str, new: str):
    folder = tmp_path / "contracts"
    shutil.copytree(settings.contracts_dir, folder)
    path = folder / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return dataclasses.replace(settings, contracts_dir=folder)


def _policy_file(tmp_path, old: str, new: str):
    assert old in POLICY
    path = tmp_path / "policies.yaml"
    path.write_text(POLICY.replace(old, new))
    return path


def test_the_repository_is_compliant_in_ci(platform_home):
    proc = run_cli(platform_home, "governance", "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(
        r"compliant: \d+ assets, \d+ columns, 4 roles, 0 sandboxes checked", proc.stdout
    )


def test_a_pii_column_declared_public_in_a_mart_contract_is_caught(platform_home, tmp_path):
    settings = _with_contract_edit(
        platform_home,
        tmp_path,
        "marts/customers.yml",
        "{name: email, type: varchar, nullable: false, sensitivity: pii",
        "{name: email, type: varchar, nullable: false, sensitivity: public",
    )
    report = check_compliance(settings)
    # One reading of sensitivity: declaring it public also stops sandboxes masking it.
    assert _rules(report) == {
        ("customers.email", "pii-lineage"),
        ("customers.email", "pii-sandbox"),
    }
    message = str(next(v for v in report.violations if v.rule == "pii-lineage"))
    assert message.startswith("customers.email: computed from PII (raw/customers.email")
    assert "declared public" in message


def test_pii_in_a_mart_marked_public_is_caught(platform_home, tmp_path):
    settings = _with_contract_edit(
        platform_home,
        tmp_path,
        "marts/daily_revenue.yml",
        "{name: order_count, type: bigint, nullable: false, sensitivity: internal",
        "{name: order_count, type: bigint, nullable: false, sensitivity: pii",
    )
    report = check_compliance(settings)
    assert ("daily_revenue.order_count", "pii-public") in _rules(report)
    # Sandboxes mask what is declared PII, wherever it is declared (one reading of sensitivity).
    assert ("daily_revenue.order_count", "pii-sandbox") not in _rules(report)
    shown = {str(v) for v in report.violations}
    assert "daily_revenue.order_count: PII in daily_revenue, which is marked public" in shown


def test_missing_retention_and_unknown_roles_or_environments_are_caught(platform_home, tmp_path):
    no_retention = _policy_file(
        tmp_path, "  stg_orders: {retention_column: ordered_at, retention: 2555d}\n", ""
    )
    report = check_compliance(platform_home, policies_file=no_retention)
    assert [str(v) for v in report.violations] == [
        "stg_orders: no retention period (contract or policies.yaml assets)",
        "stg_orders: no retention_column in policies.yaml assets",
    ]
    bad_pattern = _policy_file(tmp_path, 'write: ["sandbox:own"]', "write: [qa]")
    report = check_compliance(platform_home, policies_file=bad_pattern)
    assert [str(v) for v in report.violations] == [
        "policies.yaml:23: roles.analyst.write: unknown environment pattern 'qa' (use *, prod, "
        "staging, sandbox:*, sandbox:own or sandbox:NAME)"
    ]
    unknown_role = _policy_file(tmp_path, "users: {}", "users: {ann@example.com: [admin]}")
    report = check_compliance(platform_home, policies_file=unknown_role)
    assert "unknown role 'admin'" in str(report.violations[0])


def test_what_an_installation_serves_is_checked_too(installation, tmp_path):
    wh = as_identity(installation, "eve@example.com", "engineer")
    create_sandbox(wh, "exp", owner="ann@example.com", actor="test")
    assert check_compliance(installation, wh=wh).ok
    # A sandbox whose masking policy lost a column serves that PII unmasked.
    with wh.meta.transaction() as tx:
        tx.execute("DELETE FROM masking_policy WHERE asset = 'customers' AND column_name = 'email'")
    # An asset nobody declared, and a policy naming a sandbox that does not exist.
    con = duckdb.connect()
    try:
        stray = wh.versions.write_query(con, "scratch/notes", "SELECT 1 AS x", environment=STAGING)
    finally:
        con.close()
    wh.commit_pointers(STAGING, {"scratch/notes": stray}, run_id="test")
    ghost = _policy_file(
        tmp_path, 'read: [prod, staging, "sandbox:*"]', 'read: [prod, staging, "sandbox:ghost"]'
    )
    report = check_compliance(installation, wh=wh, policies_file=ghost)
    assert _rules(report) == {
        ("sandbox exp: customers.email", "pii-sandbox"),
        ("scratch/notes", "owner"),
        ("roles.analyst", "policy"),
    }
    assert report.sandboxes == 1
    shown = {str(v) for v in report.violations}
    assert "roles.analyst: references unknown environment 'sandbox:ghost'" in shown
    assert any(s.startswith("sandbox exp: customers.email: PII served unmasked") for s in shown)


def test_cli_check_fails_on_a_seeded_violation_naming_it(platform_home, tmp_path):
    bad = _policy_file(
        tmp_path,
        "  raw/payments: {retention_column: paid_at}\n",
        "  raw/payments: {retention_column: paid_on}\n",
    )
    proc = run_cli(
        platform_home,
        "governance",
        "check",
        env={**cli_env(platform_home), "ELT_POLICIES": str(bad)},
    )
    assert proc.returncode == 1
    assert "violation raw/payments: retention_column 'paid_on' is not a column" in proc.stdout
    assert "not compliant: 1 violations" in proc.stdout


def test_compliance_is_a_promotion_gate(platform_home, tmp_path):
    wh = open_warehouse(platform_home)
    graph = load_definitions(platform_home).resolve_asset_graph()
    instance = open_instance(platform_home)
    contracts = contracts_for(platform_home.contracts_dir)
    policy = load_promotion_policy(platform_home.promotion_path)
    compliant = evaluate_candidate(wh, instance, graph, policy, contracts)
    assert not [p for p in compliant.problems if p.startswith("governance:")]
    bad = _policy_file(tmp_path, "  customers: {retention_column: signup_date}\n", "")
    wh = open_warehouse(replace(platform_home, policies_path=bad))
    blocked = evaluate_candidate(wh, instance, graph, policy, contracts)
    assert not blocked.eligible
    assert "governance: customers: no retention_column in policies.yaml assets" in blocked.problems
