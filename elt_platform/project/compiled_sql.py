"""Compiled dbt SQL for lineage, cached per model next to the manifest.

Compiling renders Jinja (refs become relation names) without running a model. Each model's entry
is keyed by what its compiled SQL depends on: its code version (SQL, config, macros, inlined
ephemeral models) and the relations of the nodes it reads; the last few keys of each model are
kept, so reverting an edit finds its SQL again. A dbt run leaves the compiled SQL of
every node it ran in its own target folder; the runner hands it over (`remember_compiled`), so
after a model change lineage needs no second compile. Only models that no run and no earlier
compile covered make `dbt compile` run (once, for the whole project).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
from elt_platform.project.manifest import Manifest, load_manifest, relation

CACHE_NAME = "elt_compiled_sql.json"
KEEP_PER_MODEL = 8  # recent code versions per model: a reverted edit finds its SQL again


def _keys(manifest: Manifest) -> dict[str, str]:
    """unique_id -> cache key of every model."""
    out = {}
    for uid, node in manifest.nodes.items():
        if node.get("resource_type") != "model":
            continue
        parents = [
            list(relation(parent))
            for p in (node.get("depends_on") or {}).get("nodes", [])
            if (parent := manifest.node(p)) is not None and "schema" in parent
        ]
        text = manifest.code_version(uid) + json.dumps(parents, sort_keys=True)
        out[uid] = hashlib.sha256(text.encode()).hexdigest()[:24]
    return out


def compiled_sql(cfg: DbtProjectConfig) -> dict[str, str]:
    """unique_id -> compiled SQL of every model, compiling only what no run or compile covered."""
    keys = _keys(load_manifest(prepare_manifest(cfg)))
    found = _cached(cfg, keys)
    if found is not None:
        return found
    with _locked(cfg):
        found = _cached(cfg, keys)
        if found is not None:
            return found
        _store(cfg, keys, _compile(cfg))
    return _cached(cfg, keys) or {}


def cached_compiled(cfg: DbtProjectConfig, manifest: Manifest, unique_id: str) -> str | None:
    """One model's compiled SQL when a run or compile cached it for its current code (no
    compiling)."""
    key = _keys(manifest).get(unique_id)
    return _read(cfg).get(unique_id, {}).get(key or "") or None


def remember_compiled(cfg: DbtProjectConfig, run_manifest: Path) -> int:
    """Cache the compiled SQL of the models a dbt run compiled (its target folder's manifest);
    returns how many. Keys come from the platform's manifest of the same project files."""
    try:
        nodes = json.loads(run_manifest.read_text()).get("nodes", {})
    except (OSError, ValueError):
        return 0
    compiled = {
        uid: node["compiled_code"]
        for uid, node in nodes.items()
        if node.get("resource_type") == "model" and node.get("compiled_code")
    }
    if not compiled or not cfg.manifest_path.exists():
        return 0
    keys = _keys(load_manifest(cfg.manifest_path))
    with _locked(cfg):
        return _store(cfg, keys, compiled)


@contextmanager
def _locked(cfg: DbtProjectConfig) -> Iterator[None]:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.state_dir / "compile.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one writer; readers see whole files
        yield


def _read(cfg: DbtProjectConfig) -> dict[str, dict[str, str]]:
    """unique_id -> cache key -> compiled SQL (oldest key first)."""
    try:
        data = json.loads((cfg.target_dir / CACHE_NAME).read_text())
    except (OSError, ValueError):
        return {}
    nodes = data.get("models")
    return nodes if isinstance(nodes, dict) else {}


def _cached(cfg: DbtProjectConfig, keys: Mapping[str, str]) -> dict[str, str] | None:
    """Every model's compiled SQL when the cache holds all of them at their current keys."""
    entries = _read(cfg)
    out = {}
    for uid, key in keys.items():
        found = entries.get(uid, {})
        if key not in found:
            return None
        if found[key]:
            out[uid] = found[key]
    return out


def _store(cfg: DbtProjectConfig, keys: Mapping[str, str], compiled: Mapping[str, str]) -> int:
    """Merge `compiled` into the cache under current keys (models compiled to nothing are stored
    empty so they do not force a compile); call with the lock held."""
    entries = _read(cfg)
    stored = 0
    for uid, key in keys.items():
        if uid in compiled:
            found = {k: v for k, v in entries.get(uid, {}).items() if k != key}
            found[key] = compiled[uid]
            entries[uid] = dict(list(found.items())[-KEEP_PER_MODEL:])
            stored += 1
    entries = {uid: e for uid, e in entries.items() if uid in keys}
    cache = cfg.target_dir / CACHE_NAME
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"models": entries}))
    os.replace(tmp, cache)
    return stored


def _compile(cfg: DbtProjectConfig) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="elt-compile-") as tmp:
        work = Path(tmp)
        cmd = [
            dbt_executable("elt-dbt"),
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
        uid: node.get("compiled_code") or ""
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
    }
