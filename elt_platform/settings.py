"""Platform settings: where state lives, which project runs, where each configuration file is.

Read when called, never at import time; every path any module needs comes from here, so a test
(or a second installation in the same process) passes its own `Settings` and nothing else is read.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent

# Settings field -> environment variable that sets it.
ENV_VARS = {
    "home": "ELT_HOME",
    "dbt_project_dir": "ELT_PROJECT_DIR",
    "sources_dir": "ELT_SOURCES_DIR",
    "dagster_home": "DAGSTER_HOME",
    "ledger_anchor_path": "ELT_LEDGER_ANCHOR",
    "project_file_override": "ELT_PROJECT_FILE",
    "openlineage_url": "ELT_OPENLINEAGE_URL",
    "metadata_url": "ELT_METADATA_URL",
    "dagster_storage_url": "ELT_DAGSTER_STORAGE_URL",
    "duckdb_memory_limit": "ELT_DUCKDB_MEMORY_LIMIT",
    "versions_url": "ELT_VERSIONS_URL",
}
ALIASES = {"ELT_PROJECT_DIR": "ELT_DBT_PROJECT_DIR"}  # the name earlier versions read
PROJECT_FILE_NAME = "elt_project.yml"
# DuckDB's own default is 80 % of the machine's memory per process; the platform's processes
# (and dbt's) share one machine, and beyond this limit DuckDB spills to disk instead.
DUCKDB_MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class Settings:
    """Filesystem layout and configuration files of one platform installation."""

    home: Path
    dbt_project_dir: Path  # the project: a dbt project folder (dbt_project.yml)
    sources_dir: Path  # landing folder of file connectors
    dagster_home: Path
    # Where the ledger's head is anchored outside the metadata store (append-only storage in a
    # real deployment; by default a file beside the warehouse).
    ledger_anchor_path: Path
    project_file_override: Path | None = None  # the platform file, when not inside the project
    # Where OpenLineage events go: an HTTP endpoint, or None for the warehouse's JSON-lines file.
    openlineage_url: str | None = None
    # The control plane at scale (README: running at scale); None keeps the embedded SQLite.
    metadata_url: str | None = None  # postgresql://... (default: warehouse/meta.sqlite)
    dagster_storage_url: str | None = None  # Dagster's storage (default: metadata_url if Postgres)
    # Memory each DuckDB connection of the platform and of dbt may use before spilling to disk.
    duckdb_memory_limit: str = DUCKDB_MEMORY_LIMIT
    # Versions shared between machines: an fsspec URL (s3://bucket/prefix); None: local disk only.
    versions_url: str | None = None

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def metadata_path(self) -> Path:
        return self.warehouse_dir / "meta.sqlite"

    @property
    def metadata_location(self) -> str:
        """The metadata store's URL: ELT_METADATA_URL, else the SQLite file in the warehouse."""
        return self.metadata_url or f"sqlite:///{self.metadata_path}"

    @property
    def metadata_on_postgres(self) -> bool:
        return bool(self.metadata_url) and not self.metadata_location.startswith("sqlite")

    @property
    def has_metadata(self) -> bool:
        """Whether an installation's metadata store exists (a PostgreSQL one always may)."""
        if self.metadata_on_postgres:
            return True
        return Path(self.metadata_location.removeprefix("sqlite:///")).exists()

    @property
    def dagster_postgres_url(self) -> str | None:
        """Where Dagster keeps runs, events and schedules when not in DAGSTER_HOME's SQLite
        files: ELT_DAGSTER_STORAGE_URL, else the metadata store's PostgreSQL URL."""
        if self.dagster_storage_url:
            return self.dagster_storage_url
        return self.metadata_url if self.metadata_on_postgres else None

    @property
    def dbt_state_dir(self) -> Path:
        """Platform-owned dbt files (profiles, per-environment parse caches)."""
        return self.home / "dbt"

    @property
    def duckdb_spill_dir(self) -> Path:
        """Where in-memory DuckDB connections spill (each in a folder of its own)."""
        return self.home / "tmp" / "duckdb"

    def duckdb_config(self, *, in_memory: bool = True) -> dict[str, str]:
        """DuckDB config for one connection: the memory limit and, for an in-memory database,
        a spill folder of its own (DuckDB creates it and removes it on close; a database file
        spills beside itself, `<file>.tmp`)."""
        config = {"memory_limit": self.duckdb_memory_limit}
        if in_memory:
            self.duckdb_spill_dir.mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(self.duckdb_spill_dir / uuid.uuid4().hex)
        return config

    @property
    def openlineage_events_path(self) -> Path:
        """The JSON-lines file OpenLineage events are appended to when no URL is set."""
        return self.warehouse_dir / "openlineage" / "events.jsonl"

    @property
    def project_file(self) -> Path:
        """The project's optional platform file (`elt_project.yml` inside it by default)."""
        return self.project_file_override or self.dbt_project_dir / PROJECT_FILE_NAME

    @property
    def manifest_path(self) -> Path:
        return self.dbt_project_dir / "target" / "manifest.json"

    def to_environ(self) -> dict[str, str]:
        """The environment variables that make `load_settings` return these settings (for child
        processes and for resources, whose config must be plain values)."""
        return {
            ENV_VARS[f.name]: str(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from environment variables, defaulting to a project-local `.elt/`."""
    env = os.environ if environ is None else environ

    def path(name: str, default: Path) -> Path:
        var = ENV_VARS[name]
        return Path(env.get(var) or env.get(ALIASES.get(var, "")) or str(default)).resolve()

    home = path("home", Path.cwd() / ".elt")
    return Settings(
        home=home,
        dbt_project_dir=path("dbt_project_dir", REPO_ROOT / "dbt_project"),
        sources_dir=path("sources_dir", home / "sources"),
        dagster_home=path("dagster_home", home / "dagster_home"),
        ledger_anchor_path=path("ledger_anchor_path", home / "ledger-anchors.jsonl"),
        project_file_override=Path(env["ELT_PROJECT_FILE"]).resolve()
        if env.get("ELT_PROJECT_FILE")
        else None,
        openlineage_url=env.get(ENV_VARS["openlineage_url"]) or None,
        metadata_url=env.get(ENV_VARS["metadata_url"]) or None,
        dagster_storage_url=env.get(ENV_VARS["dagster_storage_url"]) or None,
        duckdb_memory_limit=env.get(ENV_VARS["duckdb_memory_limit"]) or DUCKDB_MEMORY_LIMIT,
        versions_url=env.get(ENV_VARS["versions_url"]) or None,
    )
