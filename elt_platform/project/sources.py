"""Load and validate sources.yaml into SourceConfig records."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elt_platform.configfile import load_model
from elt_platform.errors import ConfigError

KNOWN_CONNECTORS = ("files", "sql", "http")


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


class RetryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_retries: int = Field(default=RetrySettings.max_retries, ge=0)
    delay_seconds: float = Field(default=RetrySettings.delay_seconds, ge=0)


class SourceDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str = "team:data-platform"
    retries: RetryEntry = Field(default_factory=RetryEntry)


class SourceEntry(BaseModel):
    """One source: the common keys; anything else is a connector option (checked by the
    connector, which knows its own options)."""

    model_config = ConfigDict(extra="allow")
    connector: Literal["files", "sql", "http"]
    owner: str | None = None
    description: str = ""
    primary_key: list[str] = Field(default_factory=list)
    retries: RetryEntry | None = None


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: SourceDefaults = Field(default_factory=SourceDefaults)
    sources: dict[str, SourceEntry] = Field(default_factory=dict)  # none: raw data is dbt seeds

    @field_validator("sources", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("sources")
    @classmethod
    def _names(cls, value: dict[str, SourceEntry]) -> dict[str, SourceEntry]:
        for name in value:
            if not name.isidentifier() or not name.islower():
                raise ValueError(f"source name {name!r} must be a lowercase identifier")
        return value


def load_sources(path: Path) -> list[SourceConfig]:
    """The sources of `path` (`Settings.sources_config`); errors name file, line and field."""
    parsed = load_model(path, SourcesFile)
    return [_source(name, entry, parsed.defaults) for name, entry in parsed.sources.items()]


def _source(name: str, entry: SourceEntry, defaults: SourceDefaults) -> SourceConfig:
    retries = entry.retries or defaults.retries
    return SourceConfig(
        name=name,
        connector=entry.connector,
        options=dict(entry.model_extra or {}),
        owner=entry.owner or defaults.owner,
        description=entry.description,
        primary_key=tuple(entry.primary_key),
        retries=RetrySettings(retries.max_retries, retries.delay_seconds),
    )


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
