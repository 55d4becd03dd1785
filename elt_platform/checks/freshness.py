"""Freshness expectations: a Dagster FreshnessPolicy per asset from its contract's SLA."""

from __future__ import annotations

import dagster as dg

from elt_platform.contracts.model import Contract, parse_duration


def freshness_policy(contract: Contract | None) -> dg.FreshnessPolicy | None:
    """Fail when the asset has not materialized within `freshness.max_lag`; warn at half of it."""
    if contract is None:
        return None
    window = parse_duration(contract.freshness.max_lag)
    return dg.FreshnessPolicy.time_window(fail_window=window, warn_window=window / 2)
