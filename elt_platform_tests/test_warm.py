"""The warm process (`elt warm start`): commands it runs behave exactly as the same commands run
cold (output, exit code, environment, working directory), dbt runs in it too, a changed platform
file sends commands back to cold, and a command never outlives the terminal that started it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import elt_platform.settings
from elt_platform_tests.conftest import cli_env, make_settings, run_cli


def _elt(env: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "elt_platform", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _status(env: dict) -> dict | None:
    """The warm process's own account (pid, commands served, commands running)."""
    proc = _elt(env, "warm", "status")
    if proc.returncode != 0:
        return None
    words = proc.stdout.split()
    return {
        "pid": int(words[2]),
        "served": int(words[words.index("commands") - 1]),
        "running": int(words[words.index("running") - 1]),
    }


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def warm(platform_home):
    """A warm process of its own (socket in a private temp folder), stopped at the end."""
    folder = Path(tempfile.mkdtemp(prefix="eltw"))  # short: socket paths are limited to 108 bytes
    env = {**cli_env(platform_home), "ELT_WARM": "on", "ELT_WARM_SOCKET": str(folder / "s")}
    started = _elt(env, "warm", "start")
    assert started.returncode == 0, started.stderr
    assert "ready" in started.stdout
    status = _status(env)
    assert status is not None
    try:
        yield env
    finally:
        _elt(env, "warm", "stop")
        with contextlib.suppress(ProcessLookupError):
            os.kill(status["pid"], signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_command_run_warm_answers_as_it_does_cold_and_is_counted(warm, platform_home):
    cold_env = {**warm, "ELT_WARM": "off"}
    before = _status(warm)["served"]
    for args in (
        ("sql", "prod", "select count(*) as n, sum(order_amount) as total from orders"),
        ("env", "list"),
        ("releases",),
    ):
        hot, cold = _elt(warm, *args), _elt(cold_env, *args)
        assert hot.returncode == cold.returncode == 0, hot.stderr
        assert hot.stdout == cold.stdout
        assert hot.stdout.strip()
    # Bad input: the same one-line error and exit 2, from the warm process too.
    bad = ("sql", "prod", "select * from read_csv('/etc/passwd')")
    hot, cold = _elt(warm, *bad), _elt(cold_env, *bad)
    assert hot.returncode == cold.returncode == 2
    assert hot.stderr == cold.stderr
    assert hot.stderr.startswith("error: query refused: table function read_csv")
    usage = _elt(warm, "rollback", "r0001")
    assert usage.returncode == 2 and "Usage: elt" in usage.stderr
    assert _status(warm)["served"] == before + 5


def test_each_warm_command_runs_with_its_callers_environment_and_folder(
    warm, platform_home, tmp_path
):
    """Two installations served by one warm process: each command sees only its own."""
    other = make_settings(tmp_path / "other", ELT_SOURCES_DIR=str(platform_home.sources_dir))
    other_env = {**cli_env(other), "ELT_WARM": "on", "ELT_WARM_SOCKET": warm["ELT_WARM_SOCKET"]}
    created = _elt(other_env, "sandbox", "create", "only_here", "--ttl", "1d")
    # Nothing was ever published in the other installation: the sandbox has nothing to copy.
    assert created.returncode == 2, created.stdout + created.stderr
    listing = _elt(warm, "sandbox", "list")
    assert listing.returncode == 0 and "only_here" not in listing.stdout
    made = _elt(warm, "sandbox", "create", "warm_made", "--ttl", "1d")
    assert made.returncode == 0, made.stderr
    assert "warm_made" in _elt(warm, "sandbox", "list").stdout
    assert "warm_made" not in _elt(other_env, "sandbox", "list").stdout
    # A relative path resolves against the caller's folder, not the warm process's.
    relative = {**warm, "ELT_HOME": os.path.relpath(platform_home.home, tmp_path)}
    listing = _elt(relative, "sandbox", "list", cwd=tmp_path)
    assert listing.returncode == 0 and "warm_made" in listing.stdout, listing.stderr


def test_a_staging_build_and_its_dbt_run_warm_and_give_the_cold_results(
    warm, platform_home, tmp_path
):
    """A new installation's first staging build (every source extracted, every model built),
    run by the warm process, holds what the cold build of the same sources published."""
    fresh = make_settings(tmp_path / "fresh", ELT_SOURCES_DIR=str(platform_home.sources_dir))
    env = {**cli_env(fresh), "ELT_WARM": "on", "ELT_WARM_SOCKET": warm["ELT_WARM_SOCKET"]}
    served = _status(warm)["served"]
    built = _elt(env, "build", "staging")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    # The `elt` command and the dbt commands it started (parse, build) were all served warm.
    assert _status(warm)["served"] >= served + 2
    query = "select count(*), sum(revenue)::decimal(18,2) from daily_revenue"
    staging = run_cli(fresh, "sql", "staging", query, check=True).stdout
    prod = run_cli(platform_home, "sql", "prod", query, check=True).stdout
    assert staging == prod


def test_a_changed_platform_file_sends_commands_back_to_cold(warm):
    module = Path(elt_platform.settings.__file__)
    times = module.stat()
    try:
        os.utime(module, (times.st_atime, times.st_mtime + 5))
        proc = _elt(warm, "env", "list")
        assert proc.returncode == 0 and "prod" in proc.stdout  # it still ran, cold
        assert "settings.py changed" in proc.stderr and "elt warm start" in proc.stderr
        _wait_for(lambda: _status(warm) is None, 15, "the warm process to exit")
    finally:
        os.utime(module, (times.st_atime, times.st_mtime))


SLOW_PROJECT = {
    "dbt_project.yml": "name: slow\nversion: '1.0'\nprofile: slow\nmacro-paths: [macros]\n",
    "profiles.yml": "slow:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n      path: {db}\n",
    "macros/slow.sql": "{% macro slow() %}{% do modules.time.sleep(120) %}{% endmacro %}\n",
}


@pytest.mark.parametrize("how", ["interrupt", "kill"])
def test_a_command_does_not_outlive_its_client(warm, tmp_path, how):
    for name, text in SLOW_PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.replace("{db}", str(tmp_path / "slow.duckdb")))
    served = _status(warm)["served"]
    dbt = Path(sys.executable).parent / "elt-dbt"
    client = subprocess.Popen(
        [str(dbt), "run-operation", "slow", "--project-dir", str(tmp_path),
         "--profiles-dir", str(tmp_path)],
        env=warm, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(
            lambda: (s := _status(warm)) and s["served"] > served and s["running"] == 1,
            60,
            "the dbt command to run in the warm process",
        )
        if how == "interrupt":
            client.send_signal(signal.SIGINT)  # Ctrl-C reaches the command, dbt stops
            assert client.wait(timeout=30) != 0
        else:
            client.kill()  # the client cannot relay anything: the warm process ends it
            client.wait(timeout=10)
        _wait_for(lambda: (s := _status(warm)) and s["running"] == 0, 30, "the command to end")
    finally:
        if client.poll() is None:
            client.kill()


def test_a_socket_in_a_folder_others_can_enter_is_neither_served_nor_used(platform_home):
    folder = Path(tempfile.mkdtemp(prefix="eltw"))
    try:
        folder.chmod(0o755)
        env = {**cli_env(platform_home), "ELT_WARM": "on", "ELT_WARM_SOCKET": str(folder / "s")}
        proc = _elt(env, "warm", "start")
        assert proc.returncode == 2
        assert "must belong to you with mode 0700" in proc.stderr
        assert not (folder / "s").exists()
        listed = _elt(env, "env", "list")  # runs cold, says nothing about a warm process
        assert listed.returncode == 0 and "prod" in listed.stdout and "warm" not in listed.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_dbt_command_run_warm_prints_and_leaves_what_it_does_cold(warm, tmp_path):
    """`elt-dbt` (the dbt the platform runs) through the warm process: same exit code, same
    output (timestamps aside), nothing extra on stderr (the child runs the exit handlers a
    fresh interpreter runs), the same artifacts."""
    for name, text in SLOW_PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.replace("{db}", str(tmp_path / "slow.duckdb")))
    dbt = str(Path(sys.executable).parent / "elt-dbt")
    served = _status(warm)["served"]
    outputs = []
    for env in (warm, {**warm, "ELT_WARM": "off"}):
        target = tmp_path / f"target_{env['ELT_WARM']}"
        proc = subprocess.run(
            [dbt, "parse", "--project-dir", str(tmp_path), "--profiles-dir", str(tmp_path),
             "--target-path", str(target), "--no-partial-parse"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (target / "manifest.json").exists()
        text = proc.stdout.replace(target.name, "TARGET")
        lines = [line.split("  ", 1)[-1] for line in text.splitlines()]
        outputs.append((lines, proc.stderr))
    assert _status(warm)["served"] == served + 1  # the first ran warm, the second cold
    assert outputs[0][0] and outputs[0] == outputs[1]
    assert outputs[0][1] == ""
