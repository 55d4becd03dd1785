"""Load and validate sources.yaml into SourceConfig records."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from elt_platform.errors import ConfigError

KNOWN_CONNECTORS = ("files", "sql", "http")
_COMMON_KEYS = {"connector", "owner", "description", "primary_key", "retries"}


@dataclass(frozen=True)
class RetrySettings:
    """Dagster step retries for transient source failures (exponential back-off with jitter)."""

    max_retries: int = 3
    delay_seconds: float = 2.0


@dataclass(frozen=True)
class SourceConfig:
    name: str
    connector: str
    options: dict[str, Any]
    owner: str
    description: str = ""
    primary_key: tuple[str, ...] = field(default_factory=tuple)
    retries: RetrySettings = field(default_factory=RetrySettings)

    @property
    def asset_key(self) -> list[str]:
        return ["raw", self.name]

    @property
    def asset(self) -> str:
        return "/".join(self.asset_key)

    @property
    def fingerprint(self) -> str:
        """Changes whenever the configuration that defines the extraction changes."""
        blob = json.dumps([self.connector, self.options, self.primary_key], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def load_sources(path: Path) -> list[SourceConfig]:
    if not path.is_file():
        raise ConfigError(f"sources config {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    defaults = raw.get("defaults") or {}
    entries = raw.get("sources")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{path}: `sources:` must map source names to settings")
    return [_source(path, name, spec, defaults) for name, spec in entries.items()]


def _source(path: Path, name: object, spec: object, defaults: dict) -> SourceConfig:
    where = f"{path}: sources.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a mapping")
    if not isinstance(name, str) or not name.isidentifier() or not name.islower():
        raise ConfigError(f"{where}: source names must be lowercase identifiers")
    connector = spec.get("connector")
    if connector not in KNOWN_CONNECTORS:
        raise ConfigError(f"{where}.connector must be one of {KNOWN_CONNECTORS}, got {connector!r}")
    primary_key = spec.get("primary_key") or ()
    if not isinstance(primary_key, list | tuple) or not all(
        isinstance(c, str) for c in primary_key
    ):
        raise ConfigError(f"{where}.primary_key must be a list of column names")
    return SourceConfig(
        name=name,
        connector=connector,
        options={k: v for k, v in spec.items() if k not in _COMMON_KEYS},
        owner=spec.get("owner") or defaults.get("owner") or "team:data-platform",
        description=spec.get("description", ""),
        primary_key=tuple(primary_key),
        retries=_retries(where, spec.get("retries") or defaults.get("retries") or {}),
    )


def _retries(where: str, raw: object) -> RetrySettings:
    if not isinstance(raw, dict) or set(raw) - {"max_retries", "delay_seconds"}:
        raise ConfigError(f"{where}.retries takes only max_retries and delay_seconds")
    try:
        settings = RetrySettings(
            max_retries=int(raw.get("max_retries", RetrySettings.max_retries)),
            delay_seconds=float(raw.get("delay_seconds", RetrySettings.delay_seconds)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}.retries: {exc}") from exc
    if settings.max_retries < 0 or settings.delay_seconds < 0:
        raise ConfigError(f"{where}.retries values must be >= 0")
    return settings


def option(source: SourceConfig, key: str, kind: type | tuple[type, ...], default: Any = None):
    """Read one connector option with a type check that names the source on error."""
    value = source.options.get(key, default)
    if value is not None and not isinstance(value, kind):
        expected = (
            kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        )
        raise ConfigError(f"source {source.name!r}: `{key}` must be a {expected}, got {value!r}")
    return value


def check_known_options(source: SourceConfig, known: set[str]) -> None:
    unknown = sorted(set(source.options) - known)
    if unknown:
        raise ConfigError(
            f"source {source.name!r}: unknown option(s) {', '.join(unknown)} for the "
            f"{source.connector} connector (known: {', '.join(sorted(known))})"
        )
