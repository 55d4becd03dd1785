"""Compiled dbt SQL for lineage: `dbt compile` once into a temp target, cached next to the manifest.

Compiling runs no model; it only renders Jinja (refs become relation names). The cache is keyed by
the prepared manifest's hash, so it is recompiled exactly when the project changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from elt_platform.errors import ConfigError
from elt_platform.project.dbt_project import (
    TARGET_NAME,
    DbtProjectConfig,
    dbt_executable,
    dbt_vars,
    prepare_manifest,
)

CACHE_NAME = "elt_compiled_sql.json"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compiled_sql(cfg: DbtProjectConfig) -> dict[str, str]:
    """unique_id -> compiled SQL of every model, compiling only when the manifest changed."""
    manifest_path = prepare_manifest(cfg)
    digest = file_sha256(manifest_path)
    cache = cfg.target_dir / CACHE_NAME
    cached = _read_cache(cache, digest)
    if cached is not None:
        return cached
    with open(cfg.state_dir / "compile.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one compile at a time; others reuse it
        cached = _read_cache(cache, digest)
        if cached is not None:
            return cached
        compiled = _compile(cfg)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"manifest_sha256": digest, "compiled": compiled}))
        os.replace(tmp, cache)
    return compiled


def _read_cache(cache: Path, digest: str) -> dict[str, str] | None:
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    return data["compiled"] if data.get("manifest_sha256") == digest else None


def _compile(cfg: DbtProjectConfig) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="elt-compile-") as tmp:
        work = Path(tmp)
        cmd = [
            dbt_executable(),
            "compile",
            "--project-dir",
            str(cfg.project_dir),
            "--profiles-dir",
            str(cfg.profiles_dir),
            "--target",
            TARGET_NAME,
            "--vars",
            dbt_vars(work / "compile.duckdb", "compile"),
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
            "--select",
            "resource_type:model",
            "--no-partial-parse",
        ]
        env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        env.pop("DBT_TARGET_PATH", None)
        proc = subprocess.run(cmd, cwd=cfg.project_dir, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ConfigError(f"`dbt compile` failed for {cfg.project_dir}:\n{tail}")
        manifest: dict[str, Any] = json.loads((work / "target" / "manifest.json").read_text())
    return {
        uid: node["compiled_code"]
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node.get("compiled_code")
    }
