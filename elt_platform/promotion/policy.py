"""Promotion policy from promotion.yaml (all rules on by default)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from elt_platform.errors import ConfigError
from elt_platform.settings import REPO_ROOT


class PromotionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    require_all_gates: bool = True
    require_owner_and_description: bool = True
    require_reproducible: bool = True
    block_breaking_changes: bool = True
    source_environment: str = "staging"
    keep_releases: int = Field(default=10, ge=1)
    gc_grace_hours: float = Field(default=1.0, ge=0)


def load_policy(path: Path | None = None) -> PromotionPolicy:
    path = path or REPO_ROOT / "promotion.yaml"
    if not path.exists():
        return PromotionPolicy()
    try:
        return PromotionPolicy.model_validate(yaml.safe_load(path.read_text()) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid promotion policy: {exc}") from exc
