"""A third-party dbt project (the `shop_analytics` fixture) hosted unmodified: an untouched copy per
test module, platform files kept outside it, and a hash of its tree to prove nothing was written
into it but dbt's own `target/`."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from elt_platform.settings import Settings
from elt_platform_tests.conftest import make_settings

FIXTURE = Path(__file__).parents[1] / "fixtures" / "projects" / "shop_analytics"
DBT_OWN = {"target", "logs"}  # what dbt itself writes into a project (gitignored there)


def tree_digest(project: Path) -> str:
    """Hash of every file's path and bytes, except what dbt itself writes (target/, logs/)."""
    digest = hashlib.sha256()
    files = sorted(p for p in project.rglob("*") if p.is_file())
    assert files, "empty project"
    for path in files:
        rel = path.relative_to(project)
        if rel.parts[0] in DBT_OWN:
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def host_project(root: Path) -> Settings:
    """Copy the fixture to `root/shop_analytics` and return settings that host it as it is: no
    project file (no connectors, default roles, governance findings warn), raw data from seeds."""
    project = root / "shop_analytics"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns(*DBT_OWN, "*.duckdb"))
    assert not (project / "elt_project.yml").exists(), "the fixture must carry no platform file"
    return make_settings(
        root / "home",
        ELT_PROJECT_DIR=str(project),
        ELT_SOURCES_DIR=str(root / "landing"),
    )


def classify_unclassified(
    settings: Settings, root: Path, sensitivity: str = "internal"
) -> Settings:
    """The team's next step, still without editing its project: a platform file kept outside it
    (ELT_PROJECT_FILE) declaring what columns nobody classified are, so sandboxes stop masking
    them."""
    file = root / "platform" / "elt_project.yml"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(f"version: 1\npolicies:\n  defaults:\n    sensitivity: {sensitivity}\n")
    return make_settings(
        settings.home,
        ELT_PROJECT_DIR=str(settings.dbt_project_dir),
        ELT_PROJECT_FILE=str(file),
        ELT_SOURCES_DIR=str(settings.sources_dir),
    )
