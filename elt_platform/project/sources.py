"""Connector sources: the `connectors:` section of the project file (how raw tables are
extracted), validated into SourceConfig records."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elt_platform.errors import ConfigError

KNOWN_CONNECTORS = ("files", "sql", "http")
_SOURCE_NAME = re.compile(r"([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*")


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
    owner: str | None = None
    description: str = ""
    primary_key: tuple[str, ...] = field(default_factory=tuple)
    retries: RetrySettings = field(default_factory=RetrySettings)
    # Digest of the contract its rows are gated and split by (empty: none); part of `fingerprint`.
    contract_digest: str = ""

    @property
    def asset_key(self) -> list[str]:
        """The dbt source table the connector fills: `raw/<name>`, or `<source>/<table>` for an
        entry named `<source>.<table>`."""
        source, _, table = self.name.rpartition(".")
        return [source or "raw", table]

    @property
    def asset(self) -> str:
        return "/".join(self.asset_key)

    @property
    def fingerprint(self) -> str:
        """Changes whenever the configuration that defines the extraction changes, the contract
        that gates and splits its rows included: the raw asset's code version, so a changed
        contract re-extracts and re-gates a source whose data did not change."""
        blob = json.dumps(
            [self.connector, self.options, self.primary_key]
            + ([self.contract_digest] if self.contract_digest else []),
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class RetryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_retries: int = Field(default=RetrySettings.max_retries, ge=0)
    delay_seconds: float = Field(default=RetrySettings.delay_seconds, ge=0)


class SourceDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retries: RetryEntry = Field(default_factory=RetryEntry)


class SourceEntry(BaseModel):
    """One source: the common keys; anything else is a connector option (checked by the
    connector, which knows its own options). Owner, description and primary key come from the
    table's dbt source YAML; these keys only fill in for a table the dbt YAML does not declare."""

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
            if not _SOURCE_NAME.fullmatch(name):
                raise ValueError(
                    f"source name {name!r} must be a dbt source table: `table` (source `raw`) "
                    "or `source.table`, lowercase identifiers"
                )
        return value


def source_config(name: str, entry: SourceEntry, defaults: SourceDefaults) -> SourceConfig:
    """The connector configuration of one entry of the project file's `connectors:`."""
    retries = entry.retries or defaults.retries
    return SourceConfig(
        name=name,
        connector=entry.connector,
        options=dict(entry.model_extra or {}),
        owner=entry.owner,
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
