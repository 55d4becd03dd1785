"""Platform settings: where state lives, which project runs, where each configuration file is.

Read when called, never at import time; every path any module needs comes from here, so a test
(or a second installation in the same process) passes its own `Settings` and nothing else is read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent

# Settings field -> environment variable that sets it.
ENV_VARS = {
    "home": "ELT_HOME",
    "dbt_project_dir": "ELT_DBT_PROJECT_DIR",
    "sources_dir": "ELT_SOURCES_DIR",
    "sources_config": "ELT_SOURCES_CONFIG",
    "dagster_home": "DAGSTER_HOME",
    "contracts_dir": "ELT_CONTRACTS_DIR",
    "policies_path": "ELT_POLICIES",
    "promotion_path": "ELT_PROMOTION_CONFIG",
    "environments_path": "ELT_ENVIRONMENTS_CONFIG",
    "ledger_anchor_path": "ELT_LEDGER_ANCHOR",
}


@dataclass(frozen=True)
class Settings:
    """Filesystem layout and configuration files of one platform installation."""

    home: Path
    dbt_project_dir: Path
    sources_dir: Path
    sources_config: Path
    dagster_home: Path
    contracts_dir: Path
    policies_path: Path
    promotion_path: Path
    environments_path: Path
    # Where the ledger's head is anchored outside the metadata store (append-only storage in a
    # real deployment; by default a file beside the warehouse).
    ledger_anchor_path: Path

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def metadata_path(self) -> Path:
        return self.warehouse_dir / "meta.sqlite"

    @property
    def dbt_state_dir(self) -> Path:
        """Platform-owned dbt files (profiles, per-environment parse caches)."""
        return self.home / "dbt"

    @property
    def manifest_path(self) -> Path:
        return self.dbt_project_dir / "target" / "manifest.json"

    def to_environ(self) -> dict[str, str]:
        """The environment variables that make `load_settings` return these settings (for child
        processes and for resources, whose config must be plain values)."""
        return {ENV_VARS[f.name]: str(getattr(self, f.name)) for f in fields(self)}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from environment variables, defaulting to a project-local `.elt/`."""
    env = os.environ if environ is None else environ

    def path(name: str, default: Path) -> Path:
        return Path(env.get(ENV_VARS[name]) or str(default)).resolve()

    home = path("home", Path.cwd() / ".elt")
    return Settings(
        home=home,
        dbt_project_dir=path("dbt_project_dir", REPO_ROOT / "dbt_project"),
        sources_dir=path("sources_dir", home / "sources"),
        sources_config=path("sources_config", REPO_ROOT / "sources.yaml"),
        dagster_home=path("dagster_home", home / "dagster_home"),
        contracts_dir=path("contracts_dir", REPO_ROOT / "contracts"),
        policies_path=path("policies_path", REPO_ROOT / "policies.yaml"),
        promotion_path=path("promotion_path", REPO_ROOT / "promotion.yaml"),
        environments_path=path("environments_path", REPO_ROOT / "environments.yaml"),
        ledger_anchor_path=path("ledger_anchor_path", home / "ledger-anchors.jsonl"),
    )
