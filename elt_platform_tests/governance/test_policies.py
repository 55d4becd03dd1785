"""The project file's `policies:`: the demo's loads, a project without one gets the built-in
roles, mistakes name file, line and field; identity comes from run tags, then ELT_USER/ELT_ROLE,
then the default role."""

from __future__ import annotations

import pytest

from elt_platform.access.control import pattern_matches
from elt_platform.access.identity import Identity, resolve_identity
from elt_platform.errors import ConfigError
from elt_platform.project.project_file import load_policies, parse_project_file
from elt_platform.settings import load_settings

MINIMAL = """policies:
  default_role: engineer
  roles:
    engineer: {read: ["*"], write: [staging, prod, "sandbox:*"]}
    analyst: {read: [prod], write: ["sandbox:own"], unmasked: [public, internal]}
"""


def _policies(text: str):
    return parse_project_file(text, "p.yaml").policies


def test_the_demo_project_defines_the_four_roles_and_the_demo_default():
    policies = load_policies(load_settings())
    assert set(policies.roles) == {"engineer", "analyst", "steward", "auditor"}
    assert policies.default_role == "engineer"
    analyst = policies.roles["analyst"]
    assert "pii" in analyst.masked_levels and not {"prod", "staging"} & set(analyst.write)
    assert "edit_contracts" in policies.roles["steward"].actions
    assert "read_ledger" in policies.roles["auditor"].actions
    assert policies.privacy.datasets["orders_by_region_month"].budget.epsilon > 0
    assert (policies.auth.strict, policies.auth.untagged_runs) == (False, "anonymous")


def test_a_project_without_a_project_file_gets_the_built_in_roles(tmp_path):
    settings = load_settings({"ELT_PROJECT_DIR": str(tmp_path)})
    assert not settings.project_file.exists()
    policies = load_policies(settings)
    assert set(policies.roles) == {"engineer", "analyst", "steward", "auditor"}
    assert policies.default_role == "engineer" and not policies.privacy.datasets


def test_the_project_file_can_live_outside_the_project(tmp_path):
    (tmp_path / "p.yml").write_text(MINIMAL)
    settings = load_settings({"ELT_PROJECT_FILE": str(tmp_path / "p.yml")})
    assert settings.project_file == tmp_path / "p.yml"
    assert set(load_policies(settings).roles) == {"engineer", "analyst"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL.replace("default_role: engineer", "default_role: admin"),
            "p.yaml:2: policies.default_role: unknown role 'admin'",
        ),
        (
            MINIMAL + "  users:\n    ann@example.com: [analyst, superuser]\n",
            "p.yaml:7: policies.users.ann@example.com.1: user 'ann@example.com' has unknown role "
            "'superuser'",
        ),
        (
            MINIMAL.replace('write: ["sandbox:own"]', "write: [qa]"),
            "p.yaml:5: policies.roles.analyst.write: unknown environment pattern 'qa'",
        ),
        (
            MINIMAL.replace('write: ["sandbox:own"]', 'write: ["sandbox:Bad-Name"]'),
            "p.yaml:5: policies.roles.analyst.write: 'sandbox:Bad-Name' does not name a valid sandbox",
        ),
        (
            MINIMAL.replace("unmasked: [public, internal]", "unmasked: [public, secret]"),
            "p.yaml:5: policies.roles.analyst.unmasked.1: Input should be",
        ),
        (
            MINIMAL.replace("internal]}", "internal], actions: [drop_tables]}"),
            "p.yaml:5: policies.roles.analyst.actions: unknown action 'drop_tables'",
        ),
        (
            MINIMAL + "  assets:\n    orders: {retention_column: none}\n",
            "p.yaml:7: policies.assets.orders: retention_column: none needs a reason",
        ),
        (
            MINIMAL + "  auth:\n    untagged_runs: guest\n",
            "p.yaml:7: policies.auth.untagged_runs: unknown role 'guest' (not defined in roles)",
        ),
        (
            MINIMAL + "  auth:\n    strict: true\n    untaged_runs: analyst\n",
            "p.yaml:8: policies.auth.untaged_runs: Extra inputs are not permitted",
        ),
        ("policies:\n  roles: [engineer\n", "p.yaml:3: not valid YAML"),
        (
            "connectors: {sources: {orders: {connector: ftp}}}\n",
            "p.yaml:1: connectors.sources.orders.connector:",
        ),
        (
            "promotion: {governance: {rules: {ownr: block}}}\n",
            "p.yaml:1: promotion.governance.rules: unknown governance rule 'ownr'",
        ),
        ("version: 2\n", "p.yaml:1: version: unsupported project file version 2"),
    ],
)
def test_project_file_mistakes_name_file_line_and_field(text, expected):
    with pytest.raises(ConfigError) as raised:
        parse_project_file(text, "p.yaml")
    assert str(raised.value.args[0]).startswith(expected), raised.value.args[0]
    assert "\n" not in raised.value.args[0]


def test_a_malformed_project_file_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    (tmp_path / "p.yml").write_text("policies:\n  default_role: [\n")
    proc = subprocess.run(
        [sys.executable, "-m", "elt_platform", "governance", "whoami"],
        capture_output=True,
        text=True,
        env={
            **__import__("os").environ,
            "ELT_PROJECT_FILE": str(tmp_path / "p.yml"),
            "ELT_HOME": str(tmp_path / "home"),
        },
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "p.yml:3: not valid YAML" in proc.stderr and "Traceback" not in proc.stderr


def test_identity_comes_from_run_tags_then_environment_then_default():
    policies = _policies(MINIMAL + "  users:\n    pat@example.com: [analyst]\n")
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
