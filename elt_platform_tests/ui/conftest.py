"""A running Dagster UI for the UI tests: an installation of their own (staging built and promoted
by the sensor, so prod serves release 1 and `prod_release` has its first materialization), served
by `elt dev` itself (webserver, daemon and the demo payments API) on a free 127.0.0.1 port.

Its project copy has an experiment an analyst would make: `int_orders_enriched` gains an
`is_bulk_order` column behind a flag that is on in sandboxes only (staging and prod unchanged)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from elt_platform.settings import Settings
from elt_platform_tests.conftest import cli_env, edit_yaml, make_settings
from elt_platform_tests.sandboxes.conftest import copy_dbt_project
from elt_platform_tests.ui.graphql import DagsterGraphQL

EXPERIMENT_MODEL = "int_orders_enriched"
EXPERIMENT_EDIT = (
    "    orders.updated_at{% if var('experimental_bulk_flag', false) %},\n"
    "    orders.quantity >= 5 as is_bulk_order{% endif %}\n"
    "from orders"
)
READY_TIMEOUT = 240  # GraphQL answered after ~27 s under load in the probes


@dataclass
class DagsterUI:
    settings: Settings
    base_url: str
    gql: DagsterGraphQL
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def ui_home(tmp_path_factory, sources_dir, demo_api) -> Settings:
    """Own sources (the browser flow adds new orders to them) and project copy; release 1 in prod."""
    from elt_demo.api import serving_demo_api
    from elt_platform.launch.runs import build_environment, promote_via_sensor

    root = tmp_path_factory.mktemp("ui_platform")
    sources = root / "sources"
    shutil.copytree(sources_dir, sources)
    project = copy_dbt_project(root / "dbt_project")
    model = project / "models" / "intermediate" / f"{EXPERIMENT_MODEL}.sql"
    text = model.read_text()
    assert "    orders.updated_at\nfrom orders" in text
    model.write_text(text.replace("    orders.updated_at\nfrom orders", EXPERIMENT_EDIT))
    edit_yaml(
        project / "elt_project.yml",
        lambda d: d["environments"].update(sandboxes={"flags": {"experimental_bulk_flag": True}}),
    )
    settings = make_settings(
        root / "home", ELT_SOURCES_DIR=str(sources), ELT_PROJECT_DIR=str(project)
    )
    with serving_demo_api(sources):
        outcome = build_environment(settings, "staging")
    assert outcome.success, outcome.error
    promoted = promote_via_sensor(settings, actor="test")
    assert promoted.requested and promoted.success, promoted.reason
    return settings


@contextlib.contextmanager
def serving_elt_dev(settings: Settings):
    """`elt dev` (webserver + daemon + demo API) of `settings`' installation on a free port,
    stopped by its PID (and its children's) on exit."""
    port = _free_port()
    log = settings.home / "elt_dev.log"
    env = cli_env(settings)
    env.pop("ELT_DEMO_API_URL", None)  # `elt dev` must provide them itself
    env.pop("ELT_DEMO_API_TOKEN", None)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "elt_platform", "dev", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # SIGINT is not ignored in its own session
        )
    base = f"http://127.0.0.1:{port}"
    gql = DagsterGraphQL(base)
    try:
        gql.wait_ready(READY_TIMEOUT, alive=lambda: proc.poll() is None, log=log)
        yield DagsterUI(settings, base, gql, log)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)  # `elt dev` stops the webserver, daemon and API
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        pids = settings.home / "dev.pid"
        if pids.exists():  # children that outlived it (should not happen)
            for pid in pids.read_text().split()[1:]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


@pytest.fixture(scope="session")
def dagster_ui(ui_home) -> DagsterUI:
    """`elt dev` serving the UI tests' installation until the session ends."""
    with serving_elt_dev(ui_home) as ui:
        yield ui


def wait_for(predicate, timeout: float, what: str, interval: float = 2.0):
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
