"""The data contract of a dataset: typed, validated record of its structure and governance, read
from the dbt YAML (`from_dbt.py`). Everything but the dataset is optional: a project that declares
little gets a contract that checks little, and governance reports what is missing."""

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
# How dbt projects spell types -> the contract's canonical names (DuckDB's).
_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int32": "integer",
    "signed": "integer",
    "int8": "bigint",
    "long": "bigint",
    "int64": "bigint",
    "hugeint": "bigint",
    "int2": "smallint",
    "short": "smallint",
    "tinyint": "smallint",
    "float8": "double",
    "double precision": "double",
    "float64": "double",
    "float4": "float",
    "real": "float",
    "float32": "float",
    "text": "varchar",
    "string": "varchar",
    "char": "varchar",
    "bpchar": "varchar",
    "bool": "boolean",
    "logical": "boolean",
    "datetime": "timestamp",
    "timestamp without time zone": "timestamp",
}
_SIZED = re.compile(r"^(varchar|char|character varying|nvarchar)\s*\(\s*\d+\s*\)$")
_NUMERIC = re.compile(r"^(decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")


def normalize_type(declared: str) -> str | None:
    """The canonical type of a dbt `data_type` (None when the platform cannot check it, e.g. a
    struct or a vendor type: it is then documented, not gated)."""
    text = " ".join(declared.strip().lower().split())
    text = _TYPE_ALIASES.get(text, text)
    if _SIZED.match(text) or text == "character varying":
        return "varchar"
    numeric = _NUMERIC.match(text)
    if numeric:
        return f"decimal({numeric.group(2)},{numeric.group(3) or 0})"
    if text in ("decimal", "numeric"):
        return "decimal(18,3)"  # DuckDB's default precision
    return text if _TYPE.match(text) else None


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
    name: str
    type: str | None = None  # canonical type; None: not declared (or not checkable)
    nullable: bool = True  # False when the YAML tests `not_null` or constrains it
    description: str = ""
    sensitivity: Sensitivity | None = None  # None: unclassified (masked in sandboxes)
    constraints: Constraints = Field(default_factory=Constraints)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normal = value.strip().lower().replace(", ", ",")
        if not _TYPE.match(normal):
            raise ValueError(f"unknown type {value!r}")
        return normal

    @property
    def checkable(self) -> bool:
        """Whether the contract gate has anything to check for this column."""
        c = self.constraints
        return bool(
            self.type
            or not self.nullable
            or c.unique
            or c.allowed_values is not None
            or c.min is not None
            or c.max is not None
            or c.regex is not None
        )


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
    dataset: str
    kind: str = "model"  # model | seed | snapshot | source
    version: str = "1.0.0"
    owner: str | None = None
    description: str = ""
    objective: str | None = None
    primary_key: list[str] = Field(default_factory=list)
    retention: str | None = None
    retention_column: str | None = None  # `none`: rows carry no date and never expire one by one
    retention_reason: str | None = None
    freshness: Freshness | None = None
    drift_policy: DriftPolicy = DriftPolicy.EVOLVE
    volume: Volume = Field(default_factory=Volume)
    migration_note: str | None = None
    enforced: bool = False  # a dbt model contract (`contract: {enforced: true}`)
    columns: list[Column] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _semver(cls, value: object) -> str:
        text = str(value)
        if text.isdigit():  # a dbt model version (`version: 2`) is the major version
            text = f"{text}.0.0"
        if not _SEMVER.match(text):
            raise ValueError(f"{value!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        return text

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        if value is not None and not OWNER_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} must be an e-mail address or team:<name>")
        return value

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str | None) -> str | None:
        if value is not None:
            parse_period(value)
        return value

    @model_validator(mode="after")
    def _keys_exist(self) -> Contract:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate columns: {', '.join(duplicates)}")
        if self.retention_column == "none" and not (self.retention_reason or "").strip():
            raise ValueError("retention_column: none needs a retention_reason")
        return self

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def retention_period(self) -> timedelta | None:
        return parse_period(self.retention) if self.retention else None

    @property
    def gated(self) -> bool:
        """Whether the contract gate checks this dataset's rows: a raw table (source) or a model
        whose dbt contract is enforced, declaring something checkable. Other models are gated by
        their dbt tests alone, which check the same things without reading the data twice."""
        return (self.kind == "source" or self.enforced) and any(c.checkable for c in self.columns)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def columns_with(self, sensitivity: Sensitivity) -> list[str]:
        return [c.name for c in self.columns if c.sensitivity is sensitivity]
