"""Governance fixtures: private copies of the session installation (so tests that delete rows,
spend budgets or drop sandboxes never touch the shared one), and identities."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import pytest

from elt_platform.access.facade import GovernedWarehouse, open_warehouse
from elt_platform.access.identity import Identity
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.settings import Settings
from elt_platform.store.metadata import MetadataStore
from elt_platform_tests.conftest import copy_metadata, direct_sql, edit_yaml, make_settings
from elt_platform_tests.sandboxes.conftest import copy_dbt_project


def copy_installation(source: Settings, home: Path) -> Settings:
    """Copy an installation's warehouse to `home`. Version paths are stored absolute, so the copy
    is relocated (paths rewritten, catalogs rebuilt) before anything uses it."""
    settings = make_settings(home, ELT_SOURCES_DIR=str(source.sources_dir))
    shutil.copytree(
        source.warehouse_dir, settings.warehouse_dir, ignore=shutil.ignore_patterns("locks")
    )
    if source.ledger_anchor_path.exists():  # the ledger's anchors travel with its ledger
        shutil.copyfile(source.ledger_anchor_path, settings.ledger_anchor_path)
    old, new = str(source.warehouse_dir), str(settings.warehouse_dir)
    relocate = (
        "UPDATE versions SET path = ? || substr(path, ?) WHERE path LIKE ? || '%'",
        (new, len(old) + 1, old),
    )
    if settings.metadata_url is not None:  # make test-scale: the database is copied instead
        copy_metadata(source.metadata_url, settings.metadata_url)
        direct_sql(MetadataStore(settings.metadata_url), relocate)
    else:
        con = sqlite3.connect(settings.metadata_path)
        try:
            con.execute(*relocate)
            con.commit()
        finally:
            con.close()
    shutil.rmtree(settings.warehouse_dir / "catalogs", ignore_errors=True)
    wh = open_warehouse(settings)
    for record in wh.environments.list():
        wh.catalogs.rebuild(record.name)
    return settings


def as_identity(settings: Settings, user: str, role: str) -> GovernedWarehouse:
    """The installation's warehouse acting as `user` in `role`."""
    return open_warehouse(settings, Identity(user, role, "test"))


@pytest.fixture
def installation(platform_home, tmp_path) -> Settings:
    """A private, writable copy of the session's built and published installation."""
    return copy_installation(platform_home, tmp_path / "home")


def with_project_file(settings: Settings, tmp_path: Path, edit) -> Settings:
    """`settings` reading a copy of its project file changed by `edit(data)` (ELT_PROJECT_FILE)."""
    path = tmp_path / "elt_project.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(settings.project_file, path)
    edit_yaml(path, edit)
    return dataclasses.replace(settings, project_file_override=path)


def with_yaml_edit(settings: Settings, tmp_path: Path, file: str, edit) -> Settings:
    """`settings` on a copy of its dbt project whose YAML `models/<file>` `edit(data)` changed
    (its manifest prepared, as `elt dbt prepare` would)."""
    project = copy_dbt_project(tmp_path / "dbt_project")
    edit_yaml(project / "models" / file, edit)
    changed = dataclasses.replace(settings, dbt_project_dir=project)
    prepare_manifest(load_dbt_project(changed))
    return changed


def yaml_node(data: dict, name: str) -> dict:
    """The model (or, in a sources file, the source table) called `name` of a dbt YAML file."""
    if "sources" in data:
        return next(t for t in data["sources"][0]["tables"] if t["name"] == name)
    return next(m for m in data["models"] if m["name"] == name)
