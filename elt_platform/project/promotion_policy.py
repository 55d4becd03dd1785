"""The promotion policy (the `promotion:` section of the project file): which rules a release
must pass to reach prod.

Gates on data (tests, contracts, volume, masked inputs, reproducibility) always block. Governance
rules degrade: a project that declares no owners, descriptions, sensitivity or retention still
promotes, with one warning per missing thing, until the policy tightens a rule (or all of them
with `strict: true`) into a blocking gate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Level = Literal["warn", "block"]
# Governance rules and how they gate by default: what a project may simply not have declared yet
# warns; what would leak PII or break the policy itself blocks.
GOVERNANCE_RULES: dict[str, Level] = {
    "owner": "warn",
    "description": "warn",
    "sensitivity": "warn",
    "retention": "warn",
    "pii-lineage": "block",
    "pii-public": "block",
    "pii-sandbox": "block",
    "policy": "block",
    "project": "block",
}


class GovernanceGate(BaseModel):
    """How governance findings gate a promotion: `strict` blocks on every rule; `rules` sets the
    level of individual rules (`warn` or `block`)."""

    model_config = ConfigDict(extra="forbid")
    strict: bool = False
    rules: dict[str, Level] = Field(default_factory=dict)

    @field_validator("rules")
    @classmethod
    def _known(cls, value: dict[str, Level]) -> dict[str, Level]:
        unknown = sorted(set(value) - set(GOVERNANCE_RULES))
        if unknown:
            raise ValueError(
                f"unknown governance rule {unknown[0]!r} (known: {', '.join(GOVERNANCE_RULES)})"
            )
        return value

    def level(self, rule: str) -> Level:
        if self.strict:
            return "block"
        return self.rules.get(rule, GOVERNANCE_RULES.get(rule, "block"))


class PromotionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    require_all_gates: bool = True
    require_reproducible: bool = True
    block_breaking_changes: bool = True
    source_environment: str = "staging"
    keep_releases: int = Field(default=10, ge=1)
    gc_grace_hours: float = Field(default=1.0, ge=0)
    governance: GovernanceGate = Field(default_factory=GovernanceGate)
