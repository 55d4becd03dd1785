"""The project-local Dagster instance: DAGSTER_HOME prepared with the repository's dagster.yaml."""

from __future__ import annotations

import shutil

import dagster as dg

from elt_platform.settings import REPO_ROOT, Settings

DAGSTER_YAML = REPO_ROOT / "dagster.yaml"  # deployment file, kept at the repository root


def prepare_dagster_home(settings: Settings) -> None:
    """Create DAGSTER_HOME with the repository's dagster.yaml (kept in sync on every call)."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    target = settings.dagster_home / "dagster.yaml"
    if DAGSTER_YAML.exists() and (
        not target.exists() or target.read_text() != DAGSTER_YAML.read_text()
    ):
        shutil.copy(DAGSTER_YAML, target)


def open_instance(settings: Settings) -> dg.DagsterInstance:
    prepare_dagster_home(settings)
    return dg.DagsterInstance.from_config(str(settings.dagster_home))
