"""Shared fixtures: a real platform installation (temp ELT_HOME, real dbt, real Dagster instance)
built once per session, plus helpers to run the `elt` CLI in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from elt_demo.sources import ensure_synthetic_sources
from elt_platform.settings import Settings, load_settings

DEMO_ROWS = 2_000


def edit_yaml(path: Path, edit) -> Path:
    """Load a YAML file, let `edit(data)` change it in place, write it back (comments are lost)."""
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_settings(home: Path, **overrides: str) -> Settings:
    env = {"ELT_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"), **overrides}
    return load_settings({**os.environ, **env})


@pytest.fixture(scope="session")
def sources_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sources") / "landing"
    ensure_synthetic_sources(out, rows=DEMO_ROWS, seed=7)
    return out


@pytest.fixture(scope="session")
def demo_api(sources_dir):
    """The payments API (elt_demo.api) over the session's sources, for every build."""
    from elt_demo.api import serving_demo_api

    with serving_demo_api(sources_dir) as api:
        yield api


@pytest.fixture(scope="session")
def platform_home(tmp_path_factory, sources_dir, demo_api) -> Settings:
    """A fresh installation whose staging has been built once and published to prod."""
    from elt_platform.access.facade import open_warehouse
    from elt_platform.launch.runs import build_environment

    home = tmp_path_factory.mktemp("platform")
    settings = make_settings(home, ELT_SOURCES_DIR=str(sources_dir))
    outcome = build_environment(settings, "staging")
    assert outcome.success, outcome.error
    open_warehouse(settings).publish("staging", triggered_by="test", run_id=outcome.run_id)
    return settings


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment a user of `settings`' installation runs `elt` in."""
    env = {
        **os.environ,
        "ELT_HOME": str(settings.home),
        "DAGSTER_HOME": str(settings.dagster_home),
        "ELT_SOURCES_DIR": str(settings.sources_dir),
        "ELT_PROJECT_DIR": str(settings.dbt_project_dir),
        "COLUMNS": "200",
    }
    if settings.project_file_override is not None:
        env["ELT_PROJECT_FILE"] = str(settings.project_file_override)
    return env


def run_cli(settings: Settings, *args: str, env: dict | None = None, check: bool = False):
    """Run `elt` in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "elt_platform", *args],
        env=env or cli_env(settings),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"elt {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc
