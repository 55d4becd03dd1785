"""Volume gate: row count within a tolerance of the version prod currently serves."""

from __future__ import annotations

from elt_platform.checks.contract import GateOutcome
from elt_platform.project.contracts.model import Volume


def check_volume(
    rows: int, prod_rows: int | None, policy: Volume, *, stale: str | None = None
) -> GateOutcome:
    """A drop larger than `max_drop` (or growth beyond `max_growth`) against prod fails. `stale`:
    the input retention removed rows from under prod's build (then prod is no baseline)."""
    if prod_rows is None:
        return GateOutcome(
            "volume", True, "no prod version yet: nothing to compare", {"rows": rows}
        )
    if stale is not None:
        return GateOutcome(
            "volume",
            True,
            f"prod's version ({prod_rows} rows) was computed from rows retention removed from "
            f"{stale}: nothing to compare",
            {"rows": rows, "prod_rows": prod_rows},
        )
    change = (rows - prod_rows) / prod_rows if prod_rows else (0.0 if rows == 0 else 1.0)
    meta = {
        "rows": rows,
        "prod_rows": prod_rows,
        "change_ratio": round(change, 6),
        "max_drop": policy.max_drop,
    }
    if change < -policy.max_drop:
        return GateOutcome(
            "volume",
            False,
            f"row count fell {-change:.0%} against prod ({prod_rows} -> {rows}); "
            f"limit {policy.max_drop:.0%}",
            meta,
            prod_rows - rows,
        )
    if policy.max_growth is not None and change > policy.max_growth:
        return GateOutcome(
            "volume",
            False,
            f"row count grew {change:.0%} against prod ({prod_rows} -> {rows}); "
            f"limit {policy.max_growth:.0%}",
            meta,
            rows - prod_rows,
        )
    return GateOutcome("volume", True, f"{rows} rows ({change:+.1%} against prod)", meta)
