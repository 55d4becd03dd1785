"""Platform settings: where state lives, which dbt project runs. Read when called, not at import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent


@dataclass(frozen=True)
class Settings:
    """Filesystem layout and configuration for one platform installation."""

    home: Path
    dbt_project_dir: Path
    sources_dir: Path
    sources_config: Path
    dagster_home: Path
    contracts_dir: Path = REPO_ROOT / "contracts"

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


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from environment variables, defaulting to a project-local `.elt/`."""
    env = os.environ if environ is None else environ
    home = Path(env.get("ELT_HOME", str(Path.cwd() / ".elt"))).resolve()
    return Settings(
        home=home,
        dbt_project_dir=Path(
            env.get("ELT_DBT_PROJECT_DIR", str(REPO_ROOT / "dbt_project"))
        ).resolve(),
        sources_dir=Path(env.get("ELT_SOURCES_DIR", str(home / "sources"))).resolve(),
        sources_config=Path(
            env.get("ELT_SOURCES_CONFIG", str(REPO_ROOT / "sources.yaml"))
        ).resolve(),
        dagster_home=Path(env.get("DAGSTER_HOME", str(home / "dagster_home"))).resolve(),
        contracts_dir=Path(
            env.get("ELT_CONTRACTS_DIR", str(REPO_ROOT / "contracts"))
        ).resolve(),
    )
