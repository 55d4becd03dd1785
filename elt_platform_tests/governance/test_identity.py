"""Who a caller is: claimed roles are checked against pins, strict authentication refuses users
nobody pinned, and a Dagster run launched without identity tags (launchpad, GraphQL) acts as the
least-privileged role, not the default one, through a real instance and a real launch."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.test_utils import poll_for_finished_run
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

from elt_platform.access.facade import open_warehouse
from elt_platform.access.identity import ROLE_TAG, USER_TAG
from elt_platform.environments import PROD, STAGING
from elt_platform.errors import AccessDenied, UnknownEnvironment
from elt_platform.governance.jobs import RETENTION_IDENTITY
from elt_platform.launch.runs import load_definitions
from elt_platform.orchestration.instance import open_instance
from elt_platform.orchestration.names import BUILD_JOB, CREATE_SANDBOX_JOB, GC_JOB, RETENTION_JOB
from elt_platform.orchestration.partitions import sync_environment_partitions
from elt_platform.settings import REPO_ROOT
from elt_platform_tests.conftest import cli_env, run_cli
from elt_platform_tests.governance.conftest import as_identity, with_project_file

ANN = "ann@example.com"
PINNED = {ANN: ["analyst"], "eve@example.com": ["engineer"]}


def _pinned(settings, tmp_path, *, strict: bool = False):
    """`settings` with a project file pinning ann to analyst and eve to engineer (and, if
    `strict`, `policies.auth.strict: true`)."""

    def edit(data: dict) -> None:
        data["policies"]["users"] = PINNED
        if strict:
            assert data["policies"]["auth"]["strict"] is False
            data["policies"]["auth"]["strict"] = True

    return with_project_file(settings, tmp_path / ("strict" if strict else "pinned"), edit)


def _denials(settings) -> list:
    return as_identity(settings, "al@x.org", "auditor").ledger.entries(kind="access.denied")


def test_a_pinned_user_claiming_engineer_is_refused_at_the_cli(installation, tmp_path):
    env = {**cli_env(_pinned(installation, tmp_path)), "ELT_USER": ANN}
    proc = run_cli(installation, "sql", PROD, "SELECT 1 AS x", env={**env, "ELT_ROLE": "engineer"})
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == (
        "error: access denied: ann@example.com may not act as engineer (allowed: analyst)"
    )
    entry = _denials(installation)[-1]
    assert (entry.actor, entry.params["role"], entry.params["identity_source"]) == (
        f"user:{ANN}",
        "engineer",
        "environment",
    )
    ok = run_cli(installation, "sql", PROD, "SELECT email FROM customers LIMIT 1", env=env)
    assert ok.returncode == 0 and "@masked.invalid" in ok.stdout  # her pinned role: analyst


def test_strict_authentication_refuses_users_nobody_pinned(installation, tmp_path, monkeypatch):
    settings = _pinned(installation, tmp_path)
    monkeypatch.setenv("ELT_AUTH", "strict")
    stranger = as_identity(settings, "mallory@example.com", "engineer")
    with pytest.raises(AccessDenied, match="mallory@example.com is not a known user"):
        stranger.environments.pointers(STAGING)
    with pytest.raises(AccessDenied, match="not a known user"):
        stranger.meta  # noqa: B018 - even raw bookkeeping access is refused
    assert as_identity(settings, "eve@example.com", "engineer").environments.pointers(STAGING)
    monkeypatch.delenv("ELT_AUTH")
    assert stranger.environments.pointers(STAGING)  # open mode: an unpinned claim is accepted
    strict = _pinned(installation, tmp_path, strict=True)
    with pytest.raises(AccessDenied, match="not a known user"):
        as_identity(strict, "mallory@x.org", "engineer").resolve(PROD)
    proc = run_cli(installation, "env", "list", env={**cli_env(installation), "ELT_AUTH": "x"})
    assert proc.returncode == 2 and "ELT_AUTH='x' is not a mode" in proc.stderr


def test_a_run_without_identity_tags_acts_as_the_least_privileged_role(installation):
    """A launchpad run of the build job without `elt/user`/`elt/role` tags."""
    wh = open_warehouse(installation)
    before = wh.environments.pointers(STAGING)
    instance = open_instance(installation)
    sync_environment_partitions(instance, [STAGING])
    result = (
        load_definitions(installation)
        .resolve_job_def(BUILD_JOB)
        .execute_in_process(
            instance=instance,
            partition_key=STAGING,
            asset_selection=[dg.AssetKey.from_user_string("raw/products")],
            raise_on_error=False,
        )
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert (
        "access denied: untagged-run (anonymous) may not write 'staging'; anonymous may write: "
        "nothing" in failure.event_specific_data.error.message
    )
    assert wh.environments.pointers(STAGING) == before
    entry = _denials(installation)[-1]
    assert (entry.params["identity_source"], entry.params["role"]) == ("untagged run", "anonymous")


def test_automation_carries_its_identity_on_schedules_and_sensors_not_on_jobs(installation):
    defs = load_definitions(installation)
    assert defs.resolve_schedule_def("daily_retention").tags == RETENTION_IDENTITY
    assert defs.resolve_schedule_def("daily_garbage_collection").tags[ROLE_TAG] == "engineer"
    assert (
        defs.resolve_schedule_def("prune_sandboxes_hourly").tags[USER_TAG].startswith("schedule:")
    )
    for job in (RETENTION_JOB, GC_JOB, CREATE_SANDBOX_JOB, BUILD_JOB):
        # a UI launch of the job gets no identity from the job itself
        assert USER_TAG not in defs.resolve_job_def(job).tags, job


LAUNCH = """
mutation($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
DEFAULT_COORDINATOR = """run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
run_launcher:
  module: dagster.core.launcher
  class: DefaultRunLauncher
telemetry:
  enabled: false
"""


def _launch(ctx, instance, name: str, tags: list[dict]) -> dg.DagsterRun:
    result = execute_dagster_graphql(
        ctx,
        LAUNCH,
        {
            "executionParams": {
                "selector": {
                    "repositoryLocationName": "elt_platform",
                    "repositoryName": "__repository__",
                    "jobName": CREATE_SANDBOX_JOB,
                },
                "runConfigData": {
                    "ops": {"create_sandbox_from_release": {"config": {"name": name, "owner": ANN}}}
                },
                "executionMetadata": {"tags": tags},
            }
        },
    )
    assert result.data["launchRun"]["__typename"] == "LaunchRunSuccess", result.data
    return poll_for_finished_run(instance, result.data["launchRun"]["run"]["runId"], timeout=180)


def test_graphql_launch_of_create_sandbox_without_tags_is_refused(
    installation, tmp_path, monkeypatch
):
    """The launchpad/GraphQL path: a real code server, a real launchRun mutation, a real run
    process. (The instance dequeues at once instead of through the daemon.)"""
    for key, value in cli_env(installation).items():
        if key.startswith(("ELT_", "DAGSTER_")):
            monkeypatch.setenv(key, value)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(DEFAULT_COORDINATOR)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    workspace = str(REPO_ROOT / "workspace.yaml")
    with define_out_of_process_context(workspace, None, instance) as ctx:
        untagged = _launch(ctx, instance, "ui_untagged", [])
        tagged = _launch(
            ctx,
            instance,
            "ui_tagged",
            [{"key": USER_TAG, "value": ANN}, {"key": ROLE_TAG, "value": "analyst"}],
        )
    assert untagged.status == dg.DagsterRunStatus.FAILURE
    wh = open_warehouse(installation)
    with pytest.raises(UnknownEnvironment):
        wh.environments.get("ui_untagged")
    entry = _denials(installation)[-1]
    assert entry.environment == "ui_untagged" and entry.run_id is None
    assert (entry.actor, entry.params["identity_source"]) == ("user:untagged-run", "untagged run")
    assert tagged.status == dg.DagsterRunStatus.SUCCESS  # as a front end that sets the tags would
    assert wh.environments.get("ui_tagged").owner == ANN
