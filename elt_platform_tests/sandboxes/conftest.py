"""A sandbox test installation of its own (sandbox tests add and drop environments): a copy of the
dbt project, staging built once and published to prod as the release sandboxes start from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from elt_platform.settings import REPO_ROOT, Settings
from elt_platform_tests.conftest import make_settings


def copy_dbt_project(target: Path) -> Path:
    shutil.copytree(
        REPO_ROOT / "dbt_project", target, ignore=shutil.ignore_patterns("target", "logs")
    )
    return target


@pytest.fixture(scope="session")
def sandbox_home(tmp_path_factory, sources_dir, platform_home) -> Settings:
    """Installation with a published release r0001 built from a pristine copy of the project.

    It asks for platform_home so that whatever the platform's builds need (e.g. the local demo
    API that fixture's dependencies start) is in place for this installation's builds too."""
    from elt_platform.access.facade import open_warehouse
    from elt_platform.launch.runs import build_environment

    root = tmp_path_factory.mktemp("sandbox_platform")
    project = copy_dbt_project(root / "dbt_project")
    settings = make_settings(
        root / "home", ELT_SOURCES_DIR=str(sources_dir), ELT_PROJECT_DIR=str(project)
    )
    outcome = build_environment(settings, "staging")
    assert outcome.success, outcome.error
    open_warehouse(settings).publish("staging", triggered_by="test", run_id=outcome.run_id)
    return settings


def version_files(settings: Settings) -> tuple[int, int]:
    """(number, total bytes) of every file under the warehouse's versions/ folder."""
    files = [p for p in (settings.warehouse_dir / "versions").rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)
