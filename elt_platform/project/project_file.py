"""The project file: `elt_project.yml` inside the dbt project, optional. Everything the platform
needs that dbt does not already say lives here, in four sections, each with defaults when absent:

- `connectors`: how the project's raw tables are extracted (files, SQL, HTTP); none when the raw
  data is dbt seeds;
- `environments`: feature flags and dbt vars per environment;
- `promotion`: the promotion policy (which gates block, how governance findings gate, GC);
- `policies`: roles and users, governance defaults and per-asset overlays for what the dbt YAML
  does not declare, private aggregates.

What a dataset *is* (columns, types, tests, owner, sensitivity, retention ...) is declared in the
dbt YAML only; see `project/contracts/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elt_platform.configfile import load_model, parse_model
from elt_platform.project.environment_config import EnvironmentConfig, EnvironmentsFile, layered
from elt_platform.project.policies import Policies, reference_problems
from elt_platform.project.promotion_policy import PromotionPolicy
from elt_platform.project.sources import SourceConfig, SourcesFile, source_config
from elt_platform.settings import Settings


class ProjectFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    connectors: SourcesFile = Field(default_factory=SourcesFile)
    environments: EnvironmentsFile = Field(default_factory=EnvironmentsFile)
    promotion: PromotionPolicy = Field(default_factory=PromotionPolicy)
    policies: Policies = Field(default_factory=Policies)

    @field_validator("connectors", "environments", "promotion", "policies", mode="before")
    @classmethod
    def _empty_section(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"unsupported project file version {value} (this platform reads 1)")
        return value


def _problems(project: ProjectFile) -> list[tuple[tuple, str]]:
    return [(("policies", *loc), message) for loc, message in reference_problems(project.policies)]


def parse_project_file(text: str, source: str) -> ProjectFile:
    """Validate project-file YAML; errors name the file, line and field."""
    return parse_model(text, ProjectFile, source, problems=_problems)


def load_project_file(settings: Settings) -> ProjectFile:
    """The project file of the installation (`Settings.project_file`), or every default when the
    project has none; re-read only when the file changes."""
    path: Path = settings.project_file
    if not path.exists():
        return ProjectFile()
    return load_model(path, ProjectFile, problems=_problems)


def connector_sources(settings: Settings) -> list[SourceConfig]:
    """The project file's connector entries as written (`contracts.from_dbt.load_sources` adds
    what the dbt YAML declares about each table)."""
    connectors = load_project_file(settings).connectors
    return [
        source_config(name, entry, connectors.defaults)
        for name, entry in connectors.sources.items()
    ]


def load_policies(settings: Settings) -> Policies:
    """Roles, users, governance defaults and overlays, private aggregates."""
    return load_project_file(settings).policies


def load_promotion_policy(settings: Settings) -> PromotionPolicy:
    return load_project_file(settings).promotion


def environment_config(
    settings: Settings, name: str, overrides: Mapping[str, Any] | None = None
) -> EnvironmentConfig:
    """Effective flags and vars of environment `name` (see `environment_config.layered`)."""
    return layered(load_project_file(settings).environments, name, overrides)
