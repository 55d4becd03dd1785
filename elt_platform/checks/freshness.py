"""Freshness expectations: a Dagster FreshnessPolicy per asset from its contract's SLA."""

from __future__ import annotations

import dagster as dg

from elt_platform.durations import parse_period
from elt_platform.project.contracts.model import Contract


def freshness_policy(contract: Contract | None) -> dg.FreshnessPolicy | None:
    """Fail when the asset has not materialized within `freshness.max_lag`; warn at half of it."""
    if contract is None or contract.freshness is None:
        return None
    window = parse_period(contract.freshness.max_lag)
    return dg.FreshnessPolicy.time_window(fail_window=window, warn_window=window / 2)
