"""Per-environment configuration (environments.yaml): feature flags and dbt vars.

Flags switch experimental transformation paths and vars parameterise models; both reach dbt as
`--vars` (so a model reads `var('my_flag', false)`), and appear in run tags and materialization
metadata, so an experiment's semantics are visible next to its results.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from elt_platform.environments import EnvironmentKind, environment_from_name
from elt_platform.errors import ConfigError
from elt_platform.settings import REPO_ROOT

CONFIG_ENV_VAR = "ELT_ENVIRONMENTS_CONFIG"
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
RESERVED_VARS = frozenset({"elt_scratch_db", "elt_environment"})
FLAGS_TAG = "elt/flags"
VARS_TAG = "elt/vars"


@dataclass(frozen=True)
class EnvironmentConfig:
    """The flags and dbt vars in effect for one environment."""

    flags: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def dbt_vars(self) -> dict[str, Any]:
        """What dbt receives: flags and vars in one namespace (vars override same-named flags)."""
        return {**self.flags, **self.vars}

    def tags(self) -> dict[str, str]:
        """Run tags (Dagster tag values are strings; sorted JSON keeps them comparable)."""
        return {
            FLAGS_TAG: json.dumps(self.flags, sort_keys=True, default=str),
            VARS_TAG: json.dumps(self.vars, sort_keys=True, default=str),
        }

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {"flags": dict(self.flags), "vars": dict(self.vars)}


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(CONFIG_ENV_VAR, str(REPO_ROOT / "environments.yaml")))


def load_config_file(path: Path) -> dict[str, Any]:
    """The parsed YAML file (empty when it does not exist), validated in shape."""
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    return _load_config_file(str(path), stamp)


@lru_cache(maxsize=8)
def _load_config_file(name: str, stamp: int) -> dict[str, Any]:
    # Cached by modification time (treat the result as read-only): long-lived processes such as
    # the daemon see edits, and sandbox creation does not re-parse YAML every time.
    path = Path(name)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping with defaults/sandboxes/environments")
    for section in ("defaults", "sandboxes"):
        _section(raw.get(section), f"{path}: {section}")
    envs = raw.get("environments") or {}
    if not isinstance(envs, dict):
        raise ConfigError(f"{path}: environments must map environment names to settings")
    for name, entry in envs.items():
        _section(entry, f"{path}: environments.{name}")
    return raw


def environment_config(
    name: str, overrides: Mapping[str, Any] | None = None, *, path: Path | None = None
) -> EnvironmentConfig:
    """Effective config of `name`: defaults, then sandbox defaults, then its entry, then overrides
    (a sandbox's own flags and vars, stored in its record at creation)."""
    env = environment_from_name(name)
    source = path or config_path()
    raw = load_config_file(source)
    layers = [raw.get("defaults")]
    if env.kind is EnvironmentKind.SANDBOX:
        layers.append(raw.get("sandboxes"))
    layers.append((raw.get("environments") or {}).get(env.name))
    layers.append(dict(overrides) if overrides else None)
    flags: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for i, layer in enumerate(layers):
        where = f"{source}" if i < len(layers) - 1 else f"environment {env.name!r}"
        entry = _section(layer, where)
        flags.update(entry.get("flags") or {})
        values.update(entry.get("vars") or {})
    return EnvironmentConfig(flags=flags, vars=values)


def parse_assignments(items: list[str] | None, what: str) -> dict[str, Any]:
    """`["a=1", "b=true"]` from the command line -> {"a": 1, "b": True} (YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or _NAME.fullmatch(name.strip()) is None:
            raise ConfigError(
                f"invalid {what} {item!r}", hint=f"write --{what} name=value, e.g. --{what} x=true"
            )
        try:
            out[name.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid {what} value in {item!r}: {exc}") from exc
    _check_names(out, what)
    return out


def _section(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - {"flags", "vars"}:
        raise ConfigError(f"{where} must be a mapping with only `flags` and `vars`")
    for key in ("flags", "vars"):
        entries = value.get(key) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{where}.{key} must map names to values")
        _check_names(entries, f"{where}.{key}")
    return value


def _check_names(entries: Mapping[str, Any], where: str) -> None:
    for name, value in entries.items():
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            raise ConfigError(f"{where}: {name!r} is not a lowercase identifier")
        if name in RESERVED_VARS:
            raise ConfigError(f"{where}: {name!r} is reserved by the platform")
        try:
            json.dumps(value)
        except TypeError as exc:
            raise ConfigError(f"{where}.{name} must be a plain value (got {value!r})") from exc
