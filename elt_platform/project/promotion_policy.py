"""The promotion policy (promotion.yaml): which rules a release must pass to reach prod."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from elt_platform.configfile import load_model


class PromotionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    require_all_gates: bool = True
    require_owner_and_description: bool = True
    require_reproducible: bool = True
    block_breaking_changes: bool = True
    source_environment: str = "staging"
    keep_releases: int = Field(default=10, ge=1)
    gc_grace_hours: float = Field(default=1.0, ge=0)


def load_promotion_policy(path: Path) -> PromotionPolicy:
    """The policy at `path` (`Settings.promotion_path`); a missing file is an error."""
    return load_model(path, PromotionPolicy)
