"""The `elt` command line as a user runs it."""

from __future__ import annotations

from elt_platform.access.facade import open_warehouse
from elt_platform_tests.conftest import cli_env, run_cli


def test_env_list_shows_prod_and_staging_with_the_current_release(platform_home):
    current = open_warehouse(platform_home).releases.current()
    proc = run_cli(platform_home, "env", "list", check=True)
    lines = proc.stdout.splitlines()
    prod = next(line for line in lines if " prod " in line)
    assert current.release_id in prod
    assert any(" staging " in line for line in lines)


def test_invalid_environment_name_is_a_one_line_error(platform_home):
    for bad in ["Bad Name", "../prod", "x;drop", "é"]:
        proc = run_cli(platform_home, "build", bad)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.startswith("error: invalid environment name"), proc.stderr
        assert "Traceback" not in proc.stderr


def test_missing_dbt_project_is_a_one_line_error(platform_home, tmp_path):
    env = {**cli_env(platform_home), "ELT_PROJECT_DIR": str(tmp_path / "nope")}
    proc = run_cli(platform_home, "build", "staging", env=env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no dbt project at"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_usage_error_is_a_short_message_and_exit_2(platform_home):
    wh = open_warehouse(platform_home)
    before = wh.environments.pointers("prod")
    for args in (["rollback", "r0001"], ["rollback"], ["build", "staging", "--no-such-option"]):
        proc = run_cli(platform_home, *args)
        assert proc.returncode == 2, (args, proc.stdout + proc.stderr)
        assert "Traceback" not in proc.stderr and "elt" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) <= 8, proc.stderr
    assert wh.environments.pointers("prod") == before


def test_rollback_to_unknown_release_leaves_prod_unchanged(platform_home):
    wh = open_warehouse(platform_home)
    before = wh.environments.pointers("prod")
    proc = run_cli(platform_home, "rollback", "--to", "r9999-nothere")
    assert proc.returncode == 2 and "unknown release" in proc.stderr
    assert wh.environments.pointers("prod") == before


def test_sql_reads_an_environment_catalog(platform_home):
    proc = run_cli(
        platform_home, "sql", "prod", "SELECT count(*) AS n FROM main.customers", check=True
    )
    n = int(proc.stdout.split("│")[-2].strip()) if "│" in proc.stdout else None
    assert n is not None and n > 0


def _runs(settings) -> int:
    from elt_platform.orchestration.instance import open_instance

    return len(open_instance(settings).get_run_records())


def test_build_prod_and_an_unknown_select_are_refused_before_any_run(platform_home):
    before = _runs(platform_home)
    proc = run_cli(platform_home, "build", "prod")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: assets cannot be materialized directly in 'prod'"
    assert lines[1].startswith("hint: build in `staging` or a sandbox; prod changes only through")
    proc = run_cli(platform_home, "build", "staging", "--select", "raw/nope")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: no asset 'raw/nope' to build (assets: ")
    assert "hint: pass asset keys" in proc.stderr and "Traceback" not in proc.stderr
    assert _runs(platform_home) == before  # nothing was launched
