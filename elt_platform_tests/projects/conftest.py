"""A third-party dbt project (the `shop_analytics` fixture) hosted unmodified: an untouched copy per
test module, platform files kept outside it, and a hash of its tree to prove nothing was written
into it but dbt's own `target/`."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from elt_platform.settings import REPO_ROOT, Settings
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
    """Copy the fixture to `root/shop_analytics` and return settings that host it: no connector
    sources, no contracts, the repository's policies and a promotion policy that lets governance
    findings warn (the fixture declares no owners or sensitivity)."""
    project = root / "shop_analytics"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns(*DBT_OWN, "*.duckdb"))
    config = root / "platform"
    (config / "contracts").mkdir(parents=True)
    (config / "sources.yaml").write_text("sources: {}\n")
    promotion = (REPO_ROOT / "promotion.yaml").read_text()
    lenient = [
        line
        for line in promotion.splitlines()
        if not line.lstrip().startswith(("governance:", "strict:"))
    ]
    assert len(lenient) == len(promotion.splitlines()) - 2, "promotion.yaml changed shape"
    (config / "promotion.yaml").write_text("\n".join(lenient) + "\n")
    return make_settings(
        root / "home",
        ELT_DBT_PROJECT_DIR=str(project),
        ELT_SOURCES_CONFIG=str(config / "sources.yaml"),
        ELT_CONTRACTS_DIR=str(config / "contracts"),
        ELT_PROMOTION_CONFIG=str(config / "promotion.yaml"),
        ELT_SOURCES_DIR=str(root / "landing"),
    )
