"""Per-environment configuration (the `environments:` section of the project file): feature
flags and dbt vars.

Flags switch experimental transformation paths and vars parameterise models; both reach dbt as
`--vars` (so a model reads `var('my_flag', false)`), and appear in run tags and materialization
metadata, so an experiment's semantics are visible next to its results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from elt_platform.environments import EnvironmentKind, environment_from_name
from elt_platform.errors import ConfigError

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


class EnvironmentSection(BaseModel):
    """Flags and dbt vars of one layer (defaults, sandboxes, or one environment)."""

    model_config = ConfigDict(extra="forbid")
    flags: dict[str, Any] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)

    @field_validator("flags", "vars", mode="before")
    @classmethod
    def _entries(cls, value: object) -> object:
        value = {} if value is None else value
        if isinstance(value, dict):
            _check_names(value, "")
        return value


class EnvironmentsFile(BaseModel):
    """Layers of flags and vars, later wins."""

    model_config = ConfigDict(extra="forbid")
    defaults: EnvironmentSection = Field(default_factory=EnvironmentSection)
    sandboxes: EnvironmentSection = Field(default_factory=EnvironmentSection)
    environments: dict[str, EnvironmentSection] = Field(default_factory=dict)

    @field_validator("defaults", "sandboxes", mode="before")
    @classmethod
    def _empty_section(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("environments", mode="before")
    @classmethod
    def _empty_sections(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return {} if value is None else value


def layered(
    raw: EnvironmentsFile, name: str, overrides: Mapping[str, Any] | None = None
) -> EnvironmentConfig:
    """Effective config of `name`: defaults, then sandbox defaults, then its entry, then overrides
    (a sandbox's own flags and vars, stored in its record at creation)."""
    env = environment_from_name(name)
    layers = [raw.defaults]
    if env.kind is EnvironmentKind.SANDBOX:
        layers.append(raw.sandboxes)
    if env.name in raw.environments:
        layers.append(raw.environments[env.name])
    if overrides:
        try:
            layers.append(EnvironmentSection.model_validate(dict(overrides)))
        except ValidationError as exc:
            detail = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"environment {env.name!r}: {detail}") from None
    flags: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for layer in layers:
        flags.update(layer.flags)
        values.update(layer.vars)
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


def _check_names(entries: Mapping[str, Any], where: str) -> None:
    """Names are lowercase identifiers not reserved by the platform; values are plain (ValueError
    inside a model, so the loader names file and line; ConfigError from the command line)."""
    error = ConfigError if where else ValueError
    prefix = f"{where}: " if where else ""
    for name, value in entries.items():
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            raise error(f"{prefix}{name!r} is not a lowercase identifier")
        if name in RESERVED_VARS:
            raise error(f"{prefix}{name!r} is reserved by the platform")
        try:
            json.dumps(value)
        except TypeError:
            raise error(f"{prefix}{name} must be a plain value (got {value!r})") from None
