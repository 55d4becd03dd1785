"""The governance domain's Dagster definitions: the retention job and its daily schedule."""

from __future__ import annotations

import dagster as dg

from elt_platform.governance.jobs import build_governance_jobs, build_governance_schedules


def defs() -> dg.Definitions:
    jobs = build_governance_jobs()
    return dg.Definitions(jobs=jobs, schedules=build_governance_schedules(jobs))
