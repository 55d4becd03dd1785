"""The sandboxes domain's Dagster definitions: the `create_sandbox` and `prune_sandboxes` jobs,
the hourly prune schedule, and the observer that records each sandbox dbt run."""

from __future__ import annotations

import dagster as dg

from elt_platform.sandboxes.jobs import build_sandbox_jobs, build_sandbox_schedules
from elt_platform.sandboxes.run_recorder import SandboxRunRecorder

run_observers = (SandboxRunRecorder(),)


def defs() -> dg.Definitions:
    jobs = build_sandbox_jobs()
    return dg.Definitions(jobs=jobs, schedules=build_sandbox_schedules(jobs))
