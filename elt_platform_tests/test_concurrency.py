"""Different environments build in parallel; the same environment is never written twice at once."""

from __future__ import annotations

import subprocess
import sys

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import STAGING
from elt_platform.launch.runs import build_environment
from elt_platform.store.locks import EnvironmentLocks
from elt_platform_tests.conftest import cli_env, run_cli


def test_two_environments_build_concurrently_in_separate_processes(platform_home):
    wh = open_warehouse(platform_home)
    wh.environments.create_sandbox("concurrent_a", owner="a@example.com")
    env = cli_env(platform_home)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "elt_platform", "build", name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in (STAGING, "concurrent_a")
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert procs, "nothing to check"
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out
        assert "lock" not in out.lower(), out
    sandbox = wh.environments.pointers("concurrent_a")
    staging = wh.environments.pointers(STAGING)
    assert set(sandbox) == set(staging)  # every asset built in both environments
    # Same sources give the same raw versions (models differ: sandboxes compute on masked PII).
    assert {a: v for a, v in sandbox.items() if a.startswith("raw/")} == {
        a: v for a, v in staging.items() if a.startswith("raw/")
    }


def test_a_second_writer_of_the_same_environment_fails_fast_and_changes_nothing(platform_home):
    wh = open_warehouse(platform_home)
    before = wh.environments.pointers(STAGING)
    other_run = EnvironmentLocks(wh.root / "locks", url=platform_home.metadata_url)
    other_run.acquire(STAGING, holder="run other-run-id")
    try:
        proc = run_cli(platform_home, "build", STAGING, "--select", "raw/products")
    finally:
        other_run.release_all()
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: environment 'staging' is being written by run other-run-id")
    assert "hint:" in lines[1]
    assert wh.environments.pointers(STAGING) == before


def test_a_launcher_holds_the_lock_across_its_in_process_run(platform_home):
    """`elt build` locks the environment before the run and keeps it until the run ends (the
    run re-enters the lock), so no second writer starts in the gap between check and run."""
    wh = open_warehouse(platform_home)
    launcher = EnvironmentLocks(wh.root / "locks", url=platform_home.metadata_url)
    launcher.acquire(STAGING, holder="a build of staging (user:test)", share_in_process=True)
    try:
        outcome = build_environment(platform_home, STAGING, selection=["raw/products"])
        assert outcome.success, outcome.error  # the run re-entered its launcher's lock
        other = run_cli(platform_home, "build", STAGING, "--select", "raw/products")
        assert other.returncode == 2
        assert other.stderr.startswith(
            "error: environment 'staging' is being written by a build of staging (user:test)"
        )
    finally:
        launcher.release_all()
    free = run_cli(platform_home, "build", STAGING, "--select", "raw/products")
    assert free.returncode == 0, free.stderr
