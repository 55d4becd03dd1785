"""policies.yaml: the repository's policy loads; mistakes are reported with file, line and field;
identity comes from run tags, then ELT_USER/ELT_ROLE, then the default role."""

from __future__ import annotations

import pytest

from elt_platform.access.control import pattern_matches
from elt_platform.access.identity import Identity, resolve_identity
from elt_platform.errors import PolicyError
from elt_platform.project.policies import load_policies, parse_policies
from elt_platform.settings import REPO_ROOT, load_settings

MINIMAL = """default_role: engineer
roles:
  engineer: {read: ["*"], write: [staging, prod, "sandbox:*"]}
  analyst: {read: [prod], write: ["sandbox:own"], unmasked: [public, internal]}
"""


def test_the_repository_policy_defines_the_four_roles_and_the_demo_default():
    policies = load_policies(REPO_ROOT / "policies.yaml")
    assert set(policies.roles) == {"engineer", "analyst", "steward", "auditor"}
    assert policies.default_role == "engineer"
    analyst = policies.roles["analyst"]
    assert "pii" in analyst.masked_levels and not {"prod", "staging"} & set(analyst.write)
    assert "edit_contracts" in policies.roles["steward"].actions
    assert "read_ledger" in policies.roles["auditor"].actions
    assert policies.privacy.datasets["orders_by_region_month"].budget.epsilon > 0


def test_policies_path_honours_elt_policies(tmp_path):
    assert load_settings({}).policies_path == (REPO_ROOT / "policies.yaml").resolve()
    chosen = load_settings({"ELT_POLICIES": str(tmp_path / "p.yaml")}).policies_path
    assert chosen == tmp_path / "p.yaml"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL.replace("default_role: engineer", "default_role: admin"),
            "p.yaml:1: default_role: unknown role 'admin'",
        ),
        (
            MINIMAL + "users:\n  ann@example.com: [analyst, superuser]\n",
            "p.yaml:6: users.ann@example.com.1: user 'ann@example.com' has unknown role 'superuser'",
        ),
        (
            MINIMAL.replace('write: ["sandbox:own"]', "write: [qa]"),
            "p.yaml:4: roles.analyst.write: unknown environment pattern 'qa'",
        ),
        (
            MINIMAL.replace('write: ["sandbox:own"]', 'write: ["sandbox:Bad-Name"]'),
            "p.yaml:4: roles.analyst.write: 'sandbox:Bad-Name' does not name a valid sandbox",
        ),
        (
            MINIMAL.replace("unmasked: [public, internal]", "unmasked: [public, secret]"),
            "p.yaml:4: roles.analyst.unmasked.1: Input should be",
        ),
        (
            MINIMAL.replace("internal]}", "internal], actions: [drop_tables]}"),
            "p.yaml:4: roles.analyst.actions: unknown action 'drop_tables'",
        ),
        (
            MINIMAL + "assets:\n  orders: {retention_column: none}\n",
            "p.yaml:6: assets.orders: retention_column: none needs a reason",
        ),
        ("default_role: engineer\nroles: [engineer\n", "p.yaml:3: not valid YAML"),
    ],
)
def test_policy_mistakes_name_file_line_and_field(text, expected):
    with pytest.raises(PolicyError) as raised:
        parse_policies(text, "p.yaml")
    assert str(raised.value.args[0]).startswith(expected), raised.value.args[0]
    assert "\n" not in raised.value.args[0]


def test_a_missing_policy_file_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match="not found"):
        load_policies(tmp_path / "nope.yaml")


def test_identity_comes_from_run_tags_then_environment_then_default():
    policies = parse_policies(MINIMAL + "users:\n  pat@example.com: [analyst]\n", "p.yaml")
    env = {"ELT_USER": "ann@example.com", "ELT_ROLE": "analyst"}
    tags = {"elt/user": "job:nightly", "elt/role": "engineer"}
    assert resolve_identity(policies, tags=tags, environ=env) == Identity(
        "job:nightly", "engineer", "run tags"
    )
    assert resolve_identity(policies, environ=env) == Identity(
        "ann@example.com", "analyst", "environment"
    )
    default = resolve_identity(policies, environ={})
    assert (default.role, default.source) == ("engineer", "default")
    # A pinned user without ELT_ROLE gets their first pinned role, not the default.
    assert resolve_identity(policies, environ={"ELT_USER": "pat@example.com"}).role == "analyst"


@pytest.mark.parametrize(
    ("pattern", "environment", "owner", "matches"),
    [
        ("*", "prod", None, True),
        ("prod", "prod", None, True),
        ("prod", "staging", None, False),
        ("sandbox:*", "exp1", None, True),
        ("sandbox:*", "staging", None, False),
        ("sandbox:own", "exp1", "ann@example.com", True),
        ("sandbox:own", "exp1", "bob@example.com", False),
        ("sandbox:own", "exp1", None, False),
        ("sandbox:exp1", "exp1", None, True),
        ("sandbox:exp1", "exp2", None, False),
    ],
)
def test_environment_patterns(pattern, environment, owner, matches):
    assert pattern_matches(pattern, environment, owner, "ann@example.com") is matches
