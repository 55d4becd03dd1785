"""Sandboxes in the Dagster UI: a `create_sandbox` job launched with config from the launchpad,
and an hourly schedule that prunes sandboxes past their TTL (after archiving their records)."""

import dagster as dg

from elt_platform.access.identity import ROLE_TAG, USER_TAG
from elt_platform.orchestration.names import CREATE_SANDBOX_JOB, PRUNE_SANDBOXES_JOB
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.sandboxes.create import DEFAULT_TTL, create_sandbox
from elt_platform.sandboxes.prune import prune_expired

CREATE_JOB = CREATE_SANDBOX_JOB
PRUNE_JOB = PRUNE_SANDBOXES_JOB
# The hourly schedule's runs act as this identity (pin it under users: for strict auth).
PRUNE_IDENTITY = {USER_TAG: "schedule:prune_sandboxes", ROLE_TAG: "engineer"}


class CreateSandboxConfig(dg.Config):
    name: str
    from_release: str | None = None
    ttl: str = DEFAULT_TTL
    owner: str | None = None


def build_sandbox_jobs() -> list[dg.JobDefinition]:
    """The create and prune jobs: they act as the identity in their run's tags, so a launchpad
    or GraphQL launch without `elt/user`/`elt/role` tags runs as the least-privileged role and
    is refused (ledgered) before anything is written."""

    @dg.op(name="create_sandbox_from_release")
    def create_op(
        context: dg.OpExecutionContext, config: CreateSandboxConfig, warehouse: WarehouseResource
    ) -> None:
        created = create_sandbox(
            warehouse.warehouse,
            config.name,
            from_release=config.from_release,
            ttl=config.ttl,
            owner=config.owner,
            actor=f"dagster:run:{context.run_id}",
            instance=context.instance,
        )
        context.log.info(
            f"created sandbox {created.name} from {created.release_id} "
            f"({created.assets} assets, {created.seconds * 1000:.0f} ms)"
        )

    @dg.op(name="prune_expired_sandboxes")
    def prune_op(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
        for result in prune_expired(warehouse.warehouse, instance=context.instance):
            context.log.info(
                f"pruned {result.name}: record archived to {result.archived_record}, "
                f"{len(result.deleted_versions)} owned versions deleted ({result.freed_bytes} B)"
            )

    @dg.job(name=CREATE_JOB, description="Create an analyst sandbox from a release (no data copy).")
    def create_job():
        create_op()

    @dg.job(name=PRUNE_JOB, description="Drop sandboxes past their TTL after archiving records.")
    def prune_job():
        prune_op()

    return [create_job, prune_job]


def build_sandbox_schedules(jobs: list[dg.JobDefinition]) -> list[dg.ScheduleDefinition]:
    prune_job = next(j for j in jobs if j.name == PRUNE_JOB)
    return [
        dg.ScheduleDefinition(
            name="prune_sandboxes_hourly",
            job=prune_job,
            cron_schedule="17 * * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            tags=PRUNE_IDENTITY,
        )
    ]
