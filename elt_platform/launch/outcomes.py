"""What a build reports per asset (no Dagster import: a build with nothing to run reports too)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AssetOutcome:
    asset: str
    rows: int | None = None
    version_id: str | None = None
    seconds: float | None = None
    checks_passed: int = 0
    checks_failed: int = 0
    failed_checks: list[str] = field(default_factory=list)
    recomputed: bool | None = None  # dbt models: False when the run reused its existing build


@dataclass
class BuildOutcome:
    environment: str
    run_id: str | None  # None: nothing changed, so no run was launched
    success: bool
    assets: dict[str, AssetOutcome]
    error: str | None = None

    @property
    def checks_failed(self) -> int:
        return sum(a.checks_failed for a in self.assets.values())
