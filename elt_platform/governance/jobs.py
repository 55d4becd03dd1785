"""The retention job and its daily schedule. The job runs as the identity in its run tags: the
schedule's runs are a steward; a launch without tags is the least-privileged role and is
refused, so the job needs the `enforce_retention` action like anyone else."""

import dagster as dg

from elt_platform.access.identity import ROLE_TAG, USER_TAG
from elt_platform.governance.retention import enforce_retention
from elt_platform.orchestration.names import RETENTION_JOB
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.project.contracts.from_dbt import contracts_for

RETENTION_IDENTITY = {USER_TAG: "schedule:retention", ROLE_TAG: "steward"}


def build_governance_jobs() -> list[dg.JobDefinition]:

    @dg.op(name="delete_expired_rows", tags={"kind": "retention"}, out={})
    def enforce(context: dg.OpExecutionContext, warehouse: WarehouseResource):
        """Delete rows older than each asset's retention, and the rows referencing them, from every
        version still held; the builds derived from them are recomputed by the next staging
        build (retention marks them stale)."""
        wh = warehouse.warehouse
        report = enforce_retention(wh, contracts_for(wh.settings))
        context.log.info(
            f"removed {report.rows_removed} rows ({report.rows_expired} expired, "
            f"{report.rows_cascaded} by cascade; {report.rows_anonymized} anonymized) from "
            f"{len(report.rewrites)} versions "
            f"({sum(1 for r in report.rewrites if r.new_version)} rewritten, the rest "
            f"unreferenced and deleted; ledger entry {report.ledger_seq or '-'})"
        )
        for asset, why in sorted(report.skipped.items()):
            context.log.info(f"{asset}: not enforced ({why})")
        for problem in report.problems:
            context.log.warning(f"not cascaded: {problem}")

    @dg.job(name=RETENTION_JOB, description=enforce.__doc__)
    def _retention():
        enforce()

    return [_retention]


def build_governance_schedules(jobs: list[dg.JobDefinition]) -> list[dg.ScheduleDefinition]:
    job = next(j for j in jobs if j.name == RETENTION_JOB)
    return [
        dg.ScheduleDefinition(
            name="daily_retention",
            job=job,
            cron_schedule="0 2 * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            tags=RETENTION_IDENTITY,  # on the schedule, not the job: a UI launch gets none
        )
    ]
