"""Quality score (0-100) of one asset version from its check results."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckSummary:
    name: str
    passed: bool
    blocking: bool = True
    failed_rows: int = 0


def quality_score(checks: Iterable[CheckSummary], rows: int) -> float:
    """Weighted share of passing checks; a failing check still earns the share of good rows.

    Blocking checks weigh twice as much as warnings. No checks at all scores 100.
    """
    total = earned = 0.0
    for check in checks:
        weight = 2.0 if check.blocking else 1.0
        total += weight
        if check.passed:
            earned += weight
        elif rows and 0 < check.failed_rows < rows:
            earned += weight * (1 - check.failed_rows / rows) * 0.5
    return round(100.0 * earned / total, 2) if total else 100.0
