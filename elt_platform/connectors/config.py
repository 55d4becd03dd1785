"""Load and validate sources.yaml into SourceConfig records."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from elt_platform.errors import ConfigError

KNOWN_CONNECTORS = ("files",)


@dataclass(frozen=True)
class SourceConfig:
    name: str
    connector: str
    options: dict[str, Any]
    owner: str
    description: str = ""
    primary_key: tuple[str, ...] = field(default_factory=tuple)

    @property
    def asset_key(self) -> list[str]:
        return ["raw", self.name]

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
    out = []
    for name, spec in entries.items():
        where = f"{path}: sources.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a mapping")
        if not isinstance(name, str) or not name.isidentifier() or not name.islower():
            raise ConfigError(f"{where}: source names must be lowercase identifiers")
        connector = spec.get("connector")
        if connector not in KNOWN_CONNECTORS:
            raise ConfigError(
                f"{where}.connector must be one of {KNOWN_CONNECTORS}, got {connector!r}"
            )
        options = {
            k: v for k, v in spec.items()
            if k not in {"connector", "owner", "description", "primary_key"}
        }  # fmt: skip
        out.append(
            SourceConfig(
                name=name,
                connector=connector,
                options=options,
                owner=spec.get("owner") or defaults.get("owner") or "team:data-platform",
                description=spec.get("description", ""),
                primary_key=tuple(spec.get("primary_key") or ()),
            )
        )
    return out
