"""Each access rule, allowed and denied, through the real access layer: the warehouse facade, the
`elt` command line and a Dagster run's tags. Every denial is one line and an `access.denied`
ledger entry, and changes nothing else."""

from __future__ import annotations

import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.access.identity import Identity
from elt_platform.environments import PROD, STAGING
from elt_platform.errors import AccessDenied
from elt_platform.governance.contract_changes import record_contract_change
from elt_platform.launch.runs import build_environment
from elt_platform.sandboxes.create import create_sandbox
from elt_platform_tests.conftest import cli_env, run_cli
from elt_platform_tests.governance.conftest import as_identity, with_project_file

ANN, BOB = "ann@example.com", "bob@example.com"


def _denials(wh) -> list:
    """The ledger's denials, read by an auditor (analysts may not read the ledger)."""
    auditor = as_identity(wh.settings, "al@x.org", "auditor")
    return auditor.ledger.entries(kind="access.denied")


def _as(settings, user: str, role: str) -> dict:
    return {**cli_env(settings), "ELT_USER": user, "ELT_ROLE": role}


def test_engineer_writes_staging_and_analyst_may_not_write_staging_or_prod(installation):
    engineer = as_identity(installation, "eve@example.com", "engineer")
    version = engineer.resolve(PROD)["orders"]
    engineer.commit_pointers(STAGING, {"orders": version}, run_id="test")  # allowed
    analyst = as_identity(installation, ANN, "analyst")
    staging, prod = analyst.environments.pointers(STAGING), analyst.environments.pointers(PROD)
    release = analyst.releases.current().release_id
    with pytest.raises(AccessDenied) as raised:
        analyst.commit_pointers(STAGING, {"orders": version}, run_id="test")
    assert str(raised.value.args[0]) == (
        "access denied: ann@example.com (analyst) may not write 'staging'; "
        "analyst may write: sandbox:own"
    )
    with pytest.raises(AccessDenied, match="may not write 'prod'"):
        analyst.publish(STAGING, triggered_by="ann")
    with pytest.raises(AccessDenied, match="may not write 'prod'"):
        analyst.rollback(release, actor="ann")
    assert analyst.environments.pointers(STAGING) == staging
    assert analyst.environments.pointers(PROD) == prod
    assert analyst.releases.current().release_id == release
    denials = _denials(analyst)
    assert [(d.environment, d.params["action"], d.actor) for d in denials] == [
        (STAGING, "write", f"user:{ANN}"),
        (PROD, "write", f"user:{ANN}"),
        (PROD, "write", f"user:{ANN}"),
    ]
    assert denials[0].params["role"] == "analyst"
    assert as_identity(installation, "al@x.org", "auditor").ledger.verify().ok


def test_analyst_reads_pii_masked_while_engineer_and_auditor_see_what_their_role_allows(
    installation,
):
    sql = "SELECT customer_id, email, region, lifetime_value FROM customers ORDER BY customer_id"
    views = {}
    for user, role in (("eve@example.com", "engineer"), (ANN, "analyst"), ("al@x.org", "auditor")):
        con = as_identity(installation, user, role).connect(PROD)
        try:
            views[role] = con.execute(sql).fetchall()
        finally:
            con.close()
    full, analyst, auditor = views["engineer"], views["analyst"], views["auditor"]
    assert len(full) == len(analyst) == len(auditor) > 0
    assert all("@" in r[1] and not r[1].endswith("@masked.invalid") for r in full)
    # PII masked (stable tokens, so joins still work); internal and confidential values intact.
    assert all(a[1].endswith("@masked.invalid") for a in analyst)
    assert len({a[1] for a in analyst}) == len(analyst)
    assert [(a[0], a[2], a[3]) for a in analyst] == [(f[0], f[2], f[3]) for f in full]
    # The auditor may not see confidential values either: lifetime_value is redacted.
    assert all(a[3] is None for a in auditor) and [a[2] for a in auditor] == [f[2] for f in full]
    # An auditor reads prod only.
    auditor_wh = as_identity(installation, "al@x.org", "auditor")
    with pytest.raises(AccessDenied, match="may not read 'staging'"):
        auditor_wh.connect(STAGING)


def test_analyst_writes_only_their_own_sandbox(installation):
    engineer = as_identity(installation, "eve@example.com", "engineer")
    create_sandbox(engineer, "ann_exp", owner=ANN, actor="test")
    version = engineer.resolve(PROD)["orders"]
    as_identity(installation, ANN, "analyst").commit_pointers(
        "ann_exp", {"orders": version}, run_id="t"
    )
    bob = as_identity(installation, BOB, "analyst")
    with pytest.raises(AccessDenied, match=r"may not write 'ann_exp' \(owned by ann@example.com\)"):
        bob.commit_pointers("ann_exp", {"orders": version}, run_id="t")
    assert _denials(bob)[-1].params["owner"] == ANN


def test_cli_analyst_cannot_drop_another_analysts_sandbox_but_can_drop_their_own(installation):
    created = run_cli(
        installation, "sandbox", "create", "ann_exp", env=_as(installation, ANN, "analyst")
    )
    assert created.returncode == 0, created.stderr
    wh = open_warehouse(installation)
    assert wh.environments.get("ann_exp").owner == ANN  # the creator is recorded as owner
    denied = run_cli(
        installation, "sandbox", "drop", "ann_exp", env=_as(installation, BOB, "analyst")
    )
    assert denied.returncode == 2
    assert denied.stderr.splitlines()[0] == (
        "error: access denied: bob@example.com (analyst) may not write 'ann_exp' "
        "(owned by ann@example.com); analyst may write: sandbox:own"
    )
    assert wh.environments.get("ann_exp").owner == ANN  # still there
    entry = _denials(wh)[-1]
    assert (entry.actor, entry.environment, entry.params["identity_source"]) == (
        f"user:{BOB}",
        "ann_exp",
        "environment",
    )
    dropped = run_cli(
        installation, "sandbox", "drop", "ann_exp", env=_as(installation, ANN, "analyst")
    )
    assert dropped.returncode == 0, dropped.stderr
    assert "ann_exp" not in {r.name for r in wh.environments.list()}


def test_cli_only_stewards_record_contract_changes_and_auditors_read_the_ledger(installation):
    contract = "orders"  # its contract is its dbt YAML
    analyst = _as(installation, ANN, "analyst")
    denied = run_cli(installation, "governance", "contract", str(contract), env=analyst)
    assert denied.returncode == 2 and "may not edit contracts" in denied.stderr
    recorded = run_cli(
        installation,
        "governance",
        "contract",
        str(contract),
        env=_as(installation, "sue@example.com", "steward"),
    )
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded orders 1.0.0" in recorded.stdout
    wh = open_warehouse(installation)
    entry = wh.ledger.entries(kind="contract.changed")[-1]
    assert entry.actor == "user:sue@example.com" and entry.params["dataset"] == "orders"
    audit = run_cli(
        installation,
        "audit",
        "log",
        "--json",
        "--kind",
        "contract.changed",
        env=_as(installation, "al@x.org", "auditor"),
    )
    assert audit.returncode == 0, audit.stderr
    assert '"dataset": "orders"' in audit.stdout
    refused = run_cli(installation, "audit", "verify", env=analyst)
    assert refused.returncode == 2 and "may not read ledger" in refused.stderr
    # The metadata catalog's audit_log view is the ledger too.
    query = "SELECT count(*) FROM audit_log"
    refused = run_cli(installation, "catalog", "query", query, env=analyst)
    assert refused.returncode == 2 and "may not read ledger" in refused.stderr
    assert [e.params["action"] for e in _denials(wh)] == [
        "edit_contracts",
        "read_ledger",
        "read_ledger",
    ]


def test_steward_recording_the_same_contract_twice_records_it_once(installation):
    steward = as_identity(installation, "sue@example.com", "steward")
    first = record_contract_change(steward, "raw/customers")
    again = record_contract_change(steward, "raw/customers")
    assert first.recorded and first.changes == ["first recorded version"]
    assert not again.recorded
    assert len(steward.ledger.entries(kind="contract.changed")) == 1


def test_a_pinned_user_cannot_claim_another_role(installation, tmp_path):
    pinned = with_project_file(
        installation, tmp_path, lambda d: d["policies"].update(users={ANN: ["analyst"]})
    )
    wh = as_identity(pinned, ANN, "engineer")
    with pytest.raises(AccessDenied, match="ann@example.com may not act as engineer"):
        wh.authorize("write", STAGING)


def test_a_dagster_run_is_checked_against_the_identity_in_its_tags(installation):
    wh = open_warehouse(installation)
    before = wh.environments.pointers(STAGING)
    tags = Identity(ANN, "analyst", "run tags").tags()
    outcome = build_environment(installation, STAGING, selection=["raw/products"], tags=tags)
    assert not outcome.success
    assert "access denied: ann@example.com (analyst) may not write 'staging'" in outcome.error
    assert wh.environments.pointers(STAGING) == before
    entry = _denials(wh)[-1]
    assert entry.params["identity_source"] == "run tags" and entry.actor == f"user:{ANN}"
