"""`elt governance check` passes on the repository's real files and installation, catches seeded
violations (naming the asset/column), and blocks a promotion as a gate."""

from __future__ import annotations

import re

import duckdb

from elt_platform.access.facade import open_warehouse
from elt_platform.checks.compliance import check_compliance
from elt_platform.environments import STAGING
from elt_platform.launch.runs import load_definitions
from elt_platform.orchestration.instance import open_instance
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.project_file import load_promotion_policy
from elt_platform.promotion.candidate import evaluate_candidate
from elt_platform.sandboxes.create import create_sandbox
from elt_platform_tests.conftest import cli_env, run_cli
from elt_platform_tests.governance.conftest import (
    as_identity,
    with_project_file,
    with_yaml_edit,
    yaml_node,
)


def _rules(report) -> set[tuple[str, str]]:
    return {(v.subject, v.rule) for v in report.violations}


def _column(data: dict, node: str, column: str) -> dict:
    return next(c for c in yaml_node(data, node)["columns"] if c["name"] == column)


def test_the_repository_is_compliant_in_ci(platform_home):
    proc = run_cli(platform_home, "governance", "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(
        r"compliant: \d+ assets, \d+ columns, 4 roles, 0 sandboxes checked", proc.stdout
    )


def test_a_pii_column_declared_public_in_a_mart_contract_is_caught(platform_home, tmp_path):
    settings = with_yaml_edit(
        platform_home,
        tmp_path,
        "marts/_marts.yml",
        lambda d: _column(d, "customers", "email")["config"]["meta"].update(sensitivity="public"),
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
    settings = with_yaml_edit(
        platform_home,
        tmp_path,
        "marts/_marts.yml",
        lambda d: _column(d, "daily_revenue", "order_count")["config"]["meta"].update(
            sensitivity="pii"
        ),
    )
    report = check_compliance(settings)
    assert ("daily_revenue.order_count", "pii-public") in _rules(report)
    # Sandboxes mask what is declared PII, wherever it is declared (one reading of sensitivity).
    assert ("daily_revenue.order_count", "pii-sandbox") not in _rules(report)
    shown = {str(v) for v in report.violations}
    assert "daily_revenue.order_count: PII in daily_revenue, which is marked public" in shown


def test_missing_retention_and_unknown_roles_or_environments_are_caught(platform_home, tmp_path):
    def forget_retention(data: dict) -> None:
        meta = yaml_node(data, "stg_orders")["config"]["meta"]
        del meta["retention"], meta["retention_column"]

    no_retention = with_yaml_edit(
        platform_home, tmp_path / "a", "staging/_staging.yml", forget_retention
    )
    report = check_compliance(no_retention)
    assert [str(v) for v in report.violations] == [
        "stg_orders: no retention period (dbt meta `retention`)",
        "stg_orders: no retention_column (dbt meta `retention_column`, or `none`)",
    ]
    bad_pattern = with_project_file(
        platform_home,
        tmp_path / "b",
        lambda d: d["policies"]["roles"]["analyst"].update(write=["qa"]),
    )
    report = check_compliance(bad_pattern)
    [violation] = [str(v) for v in report.violations]
    assert re.fullmatch(
        r"elt_project.yml:\d+: policies\.roles\.analyst\.write: unknown environment pattern "
        r"'qa' \(use \*, prod, staging, sandbox:\*, sandbox:own or sandbox:NAME\)",
        violation,
    ), violation
    unknown_role = with_project_file(
        platform_home,
        tmp_path / "c",
        lambda d: d["policies"].update(users={"ann@x.org": ["admin"]}),
    )
    report = check_compliance(unknown_role)
    assert "unknown role 'admin'" in str(report.violations[0])


def test_what_an_installation_serves_is_checked_too(installation, tmp_path):
    wh = as_identity(installation, "eve@example.com", "engineer")
    create_sandbox(wh, "exp", owner="ann@example.com", actor="test")
    assert check_compliance(installation, wh=wh).ok
    # A sandbox whose stored masking policy says a PII column may be shown serves it unmasked.
    with wh.meta.transaction() as tx:
        tx.execute(
            "UPDATE masking_policy SET rule = 'keep'"
            " WHERE asset = 'customers' AND column_name = 'email'"
        )
    # An asset nobody declared, and a policy naming a sandbox that does not exist.
    con = duckdb.connect()
    try:
        stray = wh.versions.write_query(con, "scratch/notes", "SELECT 1 AS x", environment=STAGING)
    finally:
        con.close()
    wh.commit_pointers(STAGING, {"scratch/notes": stray}, run_id="test")
    ghost = with_project_file(
        installation,
        tmp_path,
        lambda d: d["policies"]["roles"]["analyst"].update(
            read=["prod", "staging", "sandbox:ghost"]
        ),
    )
    report = check_compliance(ghost, wh=as_identity(ghost, "eve@example.com", "engineer"))
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
    bad = with_yaml_edit(
        platform_home,
        tmp_path,
        "staging/_sources.yml",
        lambda d: yaml_node(d, "payments")["config"]["meta"].update(retention_column="paid_on"),
    )
    proc = run_cli(bad, "governance", "check", env=cli_env(bad))
    assert proc.returncode == 1
    assert "violation raw/payments: retention_column 'paid_on' is not a column" in proc.stdout
    assert "not compliant: 1 violations" in proc.stdout


def test_compliance_is_a_promotion_gate(platform_home, tmp_path):
    wh = open_warehouse(platform_home)
    graph = load_definitions(platform_home).resolve_asset_graph()
    instance = open_instance(platform_home)
    contracts = contracts_for(platform_home)
    policy = load_promotion_policy(platform_home)
    compliant = evaluate_candidate(wh, instance, graph, policy, contracts)
    assert not [p for p in compliant.problems if p.startswith("governance:")]
    bad = with_yaml_edit(
        platform_home,
        tmp_path,
        "marts/_marts.yml",
        lambda d: yaml_node(d, "customers")["config"]["meta"].pop("retention_column"),
    )
    blocked = evaluate_candidate(open_warehouse(bad), instance, graph, policy, contracts_for(bad))
    assert not blocked.eligible  # the demo's promotion policy is strict
    missing = "governance: customers: no retention_column (dbt meta `retention_column`, or `none`)"
    assert missing in blocked.problems
