"""What Dagster knows about the runs that produced builds: did each finish successfully, and if not,
what was the first error. Promotion refuses builds of failed or canceled runs; the planner never
reuses them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

_FAILED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.CANCELING}


@dataclass(frozen=True)
class RunVerdict:
    run_id: str
    status: str | None  # None: the instance does not know the run
    first_error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == dg.DagsterRunStatus.SUCCESS.value

    @property
    def failed(self) -> bool:
        """Ended in failure or was canceled (its builds may be incomplete or unchecked)."""
        return self.status in {s.value for s in _FAILED}

    def describe(self) -> str:
        """`run <id> failed: <first error>`, `run <id> was canceled`, `... has not finished`."""
        if self.status is None:
            return f"run {self.run_id} is unknown to this Dagster instance"
        if self.status == dg.DagsterRunStatus.FAILURE.value:
            return f"run {self.run_id} failed: {self.first_error or 'no error recorded'}"
        if self.status in {dg.DagsterRunStatus.CANCELED.value, dg.DagsterRunStatus.CANCELING.value}:
            return f"run {self.run_id} was canceled"
        return f"run {self.run_id} has not finished (status {self.status})"


def root_message(error) -> str:
    """The first line of the innermost cause of a step error (Dagster wraps user errors)."""
    while getattr(error, "cause", None) is not None and (
        "DagsterExecutionStepExecutionError" in (error.cls_name or "")
        or error.message.startswith("dagster._core.errors.DagsterExecutionStepExecutionError")
    ):
        error = error.cause
    lines = [line for line in error.message.strip().splitlines() if line.strip()]
    return lines[0] if lines else error.cls_name or "failed"


def first_error(instance: dg.DagsterInstance, run_id: str) -> str:
    """The first step failure of a run (or its run failure message), one line."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        error = record.dagster_event.event_specific_data.error
        if error is not None:
            return root_message(error)
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
        return (record.dagster_event.message or "").strip().splitlines()[0]
    return ""


def run_verdicts(
    instance: dg.DagsterInstance, run_ids: Iterable[str | None]
) -> dict[str, RunVerdict]:
    """Status (and first error of failed runs) of each run id, in one query for the statuses."""
    ids = sorted({r for r in run_ids if r})
    if not ids:
        return {}
    found = instance.get_run_records(dg.RunsFilter(run_ids=ids))
    records = {r.dagster_run.run_id: r for r in found}
    out = {}
    for run_id in ids:
        record = records.get(run_id)
        if record is None:
            out[run_id] = RunVerdict(run_id, None)
            continue
        status = record.dagster_run.status
        error = first_error(instance, run_id) if status == dg.DagsterRunStatus.FAILURE else ""
        out[run_id] = RunVerdict(run_id, status.value, error)
    return out


def failed_runs(instance: dg.DagsterInstance, run_ids: Iterable[str | None]) -> set[str]:
    """The runs among `run_ids` that failed or were canceled."""
    return {r for r, v in run_verdicts(instance, run_ids).items() if v.failed}
