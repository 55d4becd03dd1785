"""The dbt project as configuration: where it is, the profile the platform writes for it, and a
manifest prepared once (re-parsed only when project files change)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from elt_platform.errors import ConfigError, MissingDbtProject
from elt_platform.settings import DUCKDB_MEMORY_LIMIT, Settings

SCRATCH_VAR = "elt_scratch_db"
ENVIRONMENT_VAR = "elt_environment"
TARGET_NAME = "elt"
_PROJECT_FILE_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py"}


@dataclass(frozen=True)
class DbtProjectConfig:
    project_dir: Path
    state_dir: Path
    profile_name: str
    threads: int = 2
    project_name: str = ""
    duckdb_memory_limit: str = DUCKDB_MEMORY_LIMIT  # dbt's DuckDB spills beside the scratch file

    @property
    def profiles_dir(self) -> Path:
        return self.state_dir / "profiles"

    @property
    def target_dir(self) -> Path:
        return self.project_dir / "target"

    @property
    def manifest_path(self) -> Path:
        return self.target_dir / "manifest.json"

    def partial_parse_cache(self, environment: str) -> Path:
        return self.state_dir / "partial_parse" / f"{environment}.msgpack"


def load_dbt_project(settings: Settings) -> DbtProjectConfig:
    """Validate the configured dbt project folder and read its profile name."""
    project_dir = settings.dbt_project_dir
    project_file = project_dir / "dbt_project.yml"
    if not project_file.is_file():
        raise MissingDbtProject(f"no dbt project at {project_dir} (dbt_project.yml not found)")
    try:
        parsed = yaml.safe_load(project_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{project_file} is not valid YAML: {exc}") from exc
    profile = parsed.get("profile")
    if not isinstance(profile, str) or not profile:
        raise ConfigError(f"{project_file} has no `profile:` entry")
    return DbtProjectConfig(
        project_dir=project_dir,
        state_dir=settings.dbt_state_dir,
        profile_name=profile,
        project_name=str(parsed.get("name") or project_dir.name),
        duckdb_memory_limit=settings.duckdb_memory_limit,
    )


def render_profiles(cfg: DbtProjectConfig) -> str:
    """A profiles.yml whose DuckDB path is a dbt var, so each environment gets its own file."""
    profile = {
        cfg.profile_name: {
            "target": TARGET_NAME,
            "outputs": {
                TARGET_NAME: {
                    "type": "duckdb",
                    "path": "{{ var('" + SCRATCH_VAR + "') }}",
                    "threads": cfg.threads,
                    "settings": {"memory_limit": cfg.duckdb_memory_limit},
                }
            },
        }
    }
    return yaml.safe_dump(profile, sort_keys=False)


def write_profiles(cfg: DbtProjectConfig) -> Path:
    cfg.profiles_dir.mkdir(parents=True, exist_ok=True)
    path = cfg.profiles_dir / "profiles.yml"
    text = render_profiles(cfg)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def dbt_vars(scratch_db: Path, environment: str) -> str:
    return json.dumps({SCRATCH_VAR: str(scratch_db), ENVIRONMENT_VAR: environment})


def dbt_executable(name: str = "dbt") -> str:
    """`name` (`dbt`, or `elt-dbt`: dbt with a fast `--version`) next to this Python, else `dbt`
    on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else "dbt"


def _newest_project_mtime(project_dir: Path) -> float:
    newest = (project_dir / "dbt_project.yml").stat().st_mtime
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = [d for d in dirs if d not in {"target", "logs", "dbt_packages", ".git"}]
        for name in files:
            if Path(name).suffix in _PROJECT_FILE_SUFFIXES:
                newest = max(newest, (Path(root) / name).stat().st_mtime)
    return newest


def manifest_is_stale(cfg: DbtProjectConfig) -> bool:
    if not cfg.manifest_path.exists():
        return True
    return cfg.manifest_path.stat().st_mtime < _newest_project_mtime(cfg.project_dir)


def prepare_manifest(cfg: DbtProjectConfig, *, force: bool = False) -> Path:
    """Run `dbt parse` once if the manifest is missing or older than any project file."""
    write_profiles(cfg)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.state_dir / "parse.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one parse at a time; others reuse its result
        if not force and not manifest_is_stale(cfg):
            return cfg.manifest_path
        scratch = cfg.state_dir / "parse.duckdb"
        cmd = [
            dbt_executable("elt-dbt"),
            "parse",
            "--project-dir",
            str(cfg.project_dir),
            "--profiles-dir",
            str(cfg.profiles_dir),
            "--target",
            TARGET_NAME,
            "--vars",
            dbt_vars(scratch, "parse"),
            "--log-path",
            str(cfg.state_dir / "logs"),
        ]
        env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        env.pop("DBT_TARGET_PATH", None)
        proc = subprocess.run(cmd, cwd=cfg.project_dir, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ConfigError(f"`dbt parse` failed for {cfg.project_dir}:\n{tail}")
    return cfg.manifest_path
