"""Promotion and rollback as Dagster jobs, so the UI's run list and prod partition history are the
promotion history. Each records a materialization of every changed asset's `prod` partition.
(The docs site follows promotions through a run-status sensor of the audit domain.)"""

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from elt_platform.access.identity import ROLE_TAG, USER_TAG
from elt_platform.environments import PROD, environment_from_name
from elt_platform.errors import EltError, UnknownRelease
from elt_platform.graphs import closure
from elt_platform.orchestration.names import GC_JOB, PROMOTE_JOB, ROLLBACK_JOB
from elt_platform.orchestration.publish_lineage import publish_lineage
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.project_file import load_promotion_policy
from elt_platform.promotion.candidate import evaluate_candidate
from elt_platform.promotion.gc import collect_garbage
from elt_platform.promotion.release_asset import (
    PREVIOUS,
    previous_release,
    release_materialization,
)
from elt_platform.store.releases import PublishResult

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

# The asset graph of the code location the jobs belong to (execute_in_process gives ops no
# repository, so it is resolved lazily from the assembled Definitions).
AssetGraphSource = Callable[[], "BaseAssetGraph"]


# Runs the platform's own automation launches act as these identities (pin them under users:
# for strict authentication); a launch without identity tags acts as the least-privileged role.
PROMOTION_SENSOR_IDENTITY = {USER_TAG: "sensor:promotion_sensor", ROLE_TAG: "engineer"}
GC_IDENTITY = {USER_TAG: "schedule:collect_garbage", ROLE_TAG: "engineer"}


class PromoteConfig(dg.Config):
    source_environment: str = "staging"
    expected_manifest_hash: str = ""
    triggered_by: str = "user"


class RollbackConfig(dg.Config):
    release_id: str = Field(
        default=PREVIOUS,
        description="The release prod goes back to; `previous`: the one before prod's current.",
    )
    assets: list[str] = []
    triggered_by: str = "user"


def _prod_materializations(
    result: PublishResult, action: str, wh, extra: dict
) -> list[dg.AssetMaterialization]:
    events = []
    # The ledger head right after the move, kept in Dagster's event log as a second anchor
    # outside the metadata store (`elt audit verify` checks the anchor file; an auditor can
    # compare these with `elt audit head`).
    head = f"{result.ledger_head[0]}:{result.ledger_head[1]}" if result.ledger_head else ""
    for asset in result.changed_assets:
        version_id = result.release.manifest.get(asset)
        if version_id is None:
            continue
        build = wh.builds.get(result.release.builds.get(asset) or "")
        version = wh.versions.get(asset, version_id)
        events.append(
            dg.AssetMaterialization(
                asset_key=dg.AssetKey.from_user_string(asset),
                partition=PROD,
                description=f"{action}: prod now serves release {result.release.release_id}",
                metadata={
                    "release": result.release.release_id,
                    "previous_release": result.previous_release or "",
                    "action": action,
                    "version_id": version_id,
                    "build_id": build.build_id if build else "",
                    "source_run": (build.run_id if build else None) or "",
                    "code_version": (build.code_version if build else None) or "",
                    "dagster/row_count": dg.MetadataValue.int(version.rows),
                    "ledger_head": head,
                    **extra.get(asset, {}),
                },
                tags={"dagster/data_version": version_id},
            )
        )
    return events


def _release_event(context, result: PublishResult, action: str, wh, trigger: str):
    rows = {a: wh.versions.get(a, v).rows for a, v in result.release.manifest.items()}
    return release_materialization(
        result, action, triggered_by=trigger, run_id=context.run_id, rows=rows
    )


def _promote_body(
    context, config: PromoteConfig, warehouse: WarehouseResource, asset_graph: AssetGraphSource
):
    """Re-evaluate the gates for exactly the candidate versions, then publish them atomically."""
    with publish_lineage(context, warehouse) as lineage:  # OpenLineage START, COMPLETE/FAIL
        wh = warehouse.warehouse
        environment_from_name(config.source_environment)
        policy = load_promotion_policy(wh.settings).model_copy(
            update={"source_environment": config.source_environment}
        )
        contracts = contracts_for(wh.settings)
        cand = evaluate_candidate(wh, context.instance, asset_graph(), policy, contracts)
        if not cand.eligible:
            raise dg.Failure(
                description=f"release candidate from {cand.source_environment} is blocked",
                metadata={"problems": "\n".join(cand.problems)},
                allow_retries=False,
            )
        if config.expected_manifest_hash and config.expected_manifest_hash != cand.manifest_hash:
            raise dg.Failure(
                description="staging changed after the sensor requested this promotion; "
                "the sensor will request a new one",
                allow_retries=False,
            )
        result = wh.publish_versions(  # exactly the builds that were judged
            cand.manifest,
            builds=cand.builds,
            source_environment=cand.source_environment,
            triggered_by=config.triggered_by,
            code_version=cand.code_version,
            gate_summary=cand.gate_summary(),
            run_id=context.run_id,
        )
        lineage.published(result, cand.checks, cand.source_environment)
    checks = {a: {f"check_{k}": v for k, v in c.items()} for a, c in cand.checks.items()}
    yield from _prod_materializations(result, "promote", wh, checks)
    if result.changed:
        yield _release_event(context, result, "promote", wh, config.triggered_by)
    context.log.info(
        f"prod at {result.release.release_id} ({len(result.changed_assets)} assets changed)"
        if result.changed
        else f"nothing changed: prod already at {result.release.release_id}"
    )


def _rollback_body(
    context, config: RollbackConfig, warehouse: WarehouseResource, asset_graph: AssetGraphSource
):
    """Point prod back at a release; a subset also rolls back everything downstream of it."""
    wh = warehouse.warehouse
    with publish_lineage(context, warehouse) as lineage:  # OpenLineage START, COMPLETE/FAIL
        try:
            release_id = config.release_id
            if release_id == PREVIOUS:
                release_id = previous_release(wh.releases.list(), wh.releases.current()).release_id
                context.log.info(f"rolling back to the previous release, {release_id}")
            result = rollback_prod(
                wh,
                release_id,
                config.assets,
                asset_graph(),
                actor=config.triggered_by,
                run_id=context.run_id,
            )
        except EltError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        lineage.published(result)
    yield from _prod_materializations(result, "rollback", wh, {})
    if result.changed:
        yield _release_event(context, result, "rollback", wh, config.triggered_by)


def downstream_closure(asset_graph, assets: list[str]) -> list[str]:
    keys = [dg.AssetKey.from_user_string(a) for a in assets]
    reached = closure(keys, lambda key: asset_graph.get(key).child_keys)
    return sorted(k.to_user_string() for k in reached)


def rollback_prod(wh, release_id: str, assets: list[str], asset_graph, *, actor: str, run_id=None):
    """Full rollback repoints prod to the release; a subset publishes a mixed release."""
    target = wh.releases.get(release_id)
    if not assets:
        return wh.rollback(release_id, actor=actor, run_id=run_id)
    unknown = sorted(set(assets) - set(target.manifest))
    if unknown:
        raise UnknownRelease(f"release {release_id} has no version of {', '.join(unknown)}")
    subset = [a for a in downstream_closure(asset_graph, assets) if a in target.manifest]
    return wh.publish_versions(
        {a: target.manifest[a] for a in subset},
        source_environment=f"rollback:{release_id}",
        triggered_by=actor,
        run_id=run_id,
    )


def build_promotion_jobs(asset_graph: AssetGraphSource) -> list[dg.JobDefinition]:
    @dg.op(name="promote", tags={"kind": "promotion"}, out={})
    def promote(
        context: dg.OpExecutionContext, config: PromoteConfig, warehouse: WarehouseResource
    ):
        """Re-evaluate the gates for exactly the candidate versions, then publish atomically."""
        yield from _promote_body(context, config, warehouse, asset_graph)

    @dg.op(name="rollback", tags={"kind": "rollback"}, out={})
    def rollback(
        context: dg.OpExecutionContext, config: RollbackConfig, warehouse: WarehouseResource
    ):
        """Point prod back at a release; a subset also rolls back everything downstream."""
        yield from _rollback_body(context, config, warehouse, asset_graph)

    @dg.job(name=PROMOTE_JOB, tags={"elt/target_environment": PROD}, description=promote.__doc__)
    def _promote():
        promote()

    @dg.job(name=ROLLBACK_JOB, tags={"elt/target_environment": PROD}, description=rollback.__doc__)
    def _rollback():
        rollback()

    @dg.op(name="collect_unreferenced", tags={"kind": "gc"}, out={})
    def collect(context: dg.OpExecutionContext, warehouse: WarehouseResource):
        """Keep the newest releases and every held one; delete versions nothing references."""
        policy = load_promotion_policy(warehouse.settings)
        report = collect_garbage(
            warehouse.warehouse,
            keep=policy.keep_releases,
            grace=timedelta(hours=policy.gc_grace_hours),
            actor=f"job:{GC_JOB}",
        )
        context.log.info(
            f"collected {len(report.collected_releases)} releases, "
            f"{len(report.deleted_versions)} versions ({report.freed_bytes:,} bytes)"
        )

    @dg.job(name=GC_JOB, description=collect.__doc__)
    def _gc():
        collect()

    return [_promote, _rollback, _gc]


def build_promotion_schedules(jobs: list[dg.JobDefinition]) -> list[dg.ScheduleDefinition]:
    gc_job = next(j for j in jobs if j.name == GC_JOB)
    return [
        dg.ScheduleDefinition(
            name="daily_garbage_collection",
            job=gc_job,
            cron_schedule="30 3 * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            tags=GC_IDENTITY,
        )
    ]
