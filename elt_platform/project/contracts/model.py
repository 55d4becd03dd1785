"""The contract model: typed, validated records for a dataset's structure and governance."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from elt_platform.durations import parse_period
from elt_platform.environments import OWNER_PATTERN

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_TYPE = re.compile(
    r"^(bigint|integer|smallint|double|float|varchar|boolean|date|timestamp|"
    r"decimal\(\d+,\s*\d+\))$"
)


class Sensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    PII = "pii"


class DriftPolicy(StrEnum):
    EVOLVE = "evolve"
    FREEZE = "freeze"
    QUARANTINE = "quarantine"


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unique: bool = False
    min: float | None = None
    max: float | None = None
    allowed_values: list[str] | None = None
    regex: str | None = None

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from exc
        return value


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    type: str
    nullable: bool = True
    description: str = Field(min_length=1)
    sensitivity: Sensitivity
    constraints: Constraints = Field(default_factory=Constraints)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        normal = value.strip().lower()
        if not _TYPE.match(normal):
            raise ValueError(f"unknown type {value!r}")
        return normal.replace(", ", ",")


class Freshness(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_lag: str

    @field_validator("max_lag")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_period(value)
        return value


class Volume(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_drop: float = Field(default=0.3, ge=0, le=1)
    max_growth: float | None = Field(default=None, ge=0)


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(pattern=r"^[a-z_][a-z0-9_]*(/[a-z_][a-z0-9_]*)?$")
    version: str
    owner: str
    description: str = Field(min_length=1)
    objective: str = Field(min_length=1)
    primary_key: list[str] = Field(min_length=1)
    retention: str
    freshness: Freshness
    drift_policy: DriftPolicy = DriftPolicy.EVOLVE
    volume: Volume = Field(default_factory=Volume)
    migration_note: str | None = None
    columns: list[Column] = Field(min_length=1)

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not _SEMVER.match(value):
            raise ValueError(f"{value!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        return value

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        if not OWNER_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} must be an e-mail address or team:<name>")
        return value

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        parse_period(value)
        return value

    @model_validator(mode="after")
    def _keys_exist(self) -> Contract:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate columns: {', '.join(duplicates)}")
        missing = [k for k in self.primary_key if k not in names]
        if missing:
            raise ValueError(f"primary_key names unknown columns: {', '.join(missing)}")
        return self

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def retention_period(self) -> timedelta:
        return parse_period(self.retention)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def columns_with(self, sensitivity: Sensitivity) -> list[str]:
        return [c.name for c in self.columns if c.sensitivity is sensitivity]
