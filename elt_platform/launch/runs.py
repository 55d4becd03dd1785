"""Launching the platform's jobs outside the webserver, as recorded Dagster runs: builds, the
promotion sensor's evaluation and the run it requests, rollbacks. Composition lives in
`assembly.py`; this module only runs what it built."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import dagster as dg

from elt_platform.access.facade import GovernedWarehouse, open_warehouse
from elt_platform.assembly import build_definitions
from elt_platform.environments import environment_from_name, require_buildable
from elt_platform.launch.outcomes import AssetOutcome, BuildOutcome
from elt_platform.launch.plans import require_known
from elt_platform.orchestration.instance import open_instance
from elt_platform.orchestration.names import (
    BUILD_JOB,
    CODE_VERSION_TAG,
    PROMOTE_JOB,
    PROMOTION_SENSOR,
    ROLLBACK_JOB,
)
from elt_platform.orchestration.partitions import sync_environment_partitions
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.orchestration.runs import root_message
from elt_platform.project.code_version import current_code_version
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.project_file import load_promotion_policy
from elt_platform.promotion.candidate import Candidate, evaluate_candidate
from elt_platform.settings import Settings

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@lru_cache(maxsize=4)
def load_definitions(settings: Settings) -> dg.Definitions:
    """The installation's Definitions, built once per process and settings."""
    return build_definitions(settings)


def build_environment(
    settings: Settings,
    environment: str,
    *,
    selection: list[str] | None = None,
    instance: dg.DagsterInstance | None = None,
    tags: dict[str, str] | None = None,
    log_level: str = "WARNING",
) -> BuildOutcome:
    """Materialize (a selection of) assets in one environment as a recorded Dagster run, acting
    as the identity in `tags` or else as this process's caller. Everything a user can get wrong
    (prod, an unknown environment or asset, a busy environment) is refused before the run."""
    env = require_buildable(environment_from_name(environment))
    warehouse = open_warehouse(settings)
    warehouse.environments.get(env.name)  # unknown environment -> clear error, nothing run
    # Busy environment -> clear error, nothing run. Held until the run ends (the run's own
    # acquire re-enters it), so no second writer can start in between.
    warehouse.locks.acquire(
        env.name,
        holder=f"a build of {env.name} ({warehouse.identity.actor})",
        share_in_process=True,
    )
    try:
        return _run_build(settings, env.name, warehouse, selection, instance, tags, log_level)
    finally:
        warehouse.locks.release_all()


def _run_build(
    settings: Settings,
    environment: str,
    warehouse: GovernedWarehouse,
    selection: list[str] | None,
    instance: dg.DagsterInstance | None,
    tags: dict[str, str] | None,
    log_level: str,
) -> BuildOutcome:
    env = environment_from_name(environment)
    instance = instance or open_instance(settings)
    sync_environment_partitions(instance, [r.name for r in warehouse.environments.list()])
    defs = load_definitions(settings)
    job = defs.resolve_job_def(BUILD_JOB)
    asset_selection = _asset_selection(defs, selection)
    result = job.execute_in_process(
        instance=instance,
        partition_key=env.name,
        asset_selection=asset_selection,
        raise_on_error=False,
        tags={
            "elt/environment": env.name,
            CODE_VERSION_TAG: current_code_version(settings.dbt_project_dir).label,
            **warehouse.identity.tags(),  # the run acts as its caller ...
            **(tags or {}),  # ... unless the tags name someone
        },
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    # Planning reads this instead of importing Dagster to ask whether the run's builds are usable.
    warehouse.builds.record_run_outcome(result.run_id, result.dagster_run.status.value)
    return summarize_run(result, env.name)


def _asset_selection(defs: dg.Definitions, selection: list[str] | None) -> list | None:
    """The asset keys of `--select` values; an unknown one is refused before any run starts."""
    if not selection:
        return None
    graph = defs.resolve_asset_graph()
    require_known((k.to_user_string() for k in graph.materializable_asset_keys), selection)
    return [dg.AssetKey.from_user_string(s) for s in selection]


def summarize_run(result: dg.ExecuteInProcessResult, environment: str) -> BuildOutcome:
    assets: dict[str, AssetOutcome] = {}
    for mat in result.get_asset_materialization_events():
        m = mat.event_specific_data.materialization
        key = m.asset_key.to_user_string()
        md = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
        seconds = md.get("duration_seconds") or md.get("Execution Duration")
        assets[key] = AssetOutcome(
            asset=key,
            rows=md.get("dagster/row_count"),
            version_id=md.get("version_id"),
            seconds=round(float(seconds), 2) if seconds is not None else None,
            recomputed=md.get("rebuilt"),
        )
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        evaluation = event.event_specific_data
        key = evaluation.asset_key.to_user_string()
        outcome = assets.setdefault(key, AssetOutcome(asset=key))
        if evaluation.passed:
            outcome.checks_passed += 1
        else:
            outcome.checks_failed += 1
            outcome.failed_checks.append(evaluation.check_name)
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        if failures:
            error = root_message(failures[0].event_specific_data.error)
    return BuildOutcome(environment, result.run_id, result.success, assets, error)


@dataclass
class PromotionOutcome:
    requested: bool
    reason: str
    run_id: str | None = None
    success: bool = False
    release_id: str | None = None
    changed_assets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # governance findings the policy let through


def explain_candidate(settings: Settings, instance: dg.DagsterInstance | None = None) -> Candidate:
    """The staging candidate judged exactly as the sensor judges it, with every problem and
    warning (the sensor's skip reason shows only the first few)."""
    wh = open_warehouse(settings)
    graph = load_definitions(settings).resolve_asset_graph()
    policy = load_promotion_policy(settings)
    contracts = contracts_for(settings)
    return evaluate_candidate(wh, instance or open_instance(settings), graph, policy, contracts)


def promote_via_sensor(
    settings: Settings, instance: dg.DagsterInstance | None = None, *, actor: str | None = None
) -> PromotionOutcome:
    """Evaluate the promotion sensor once and execute the run it requests (if any)."""
    instance = instance or open_instance(settings)
    defs = load_definitions(settings)
    with dg.build_sensor_context(
        instance=instance,
        repository_def=defs.get_repository_def(),
        resources={"warehouse": WarehouseResource.for_settings(settings)},
    ) as context:
        result = defs.resolve_sensor_def(PROMOTION_SENSOR)(context)
    if isinstance(result, dg.SkipReason):
        return PromotionOutcome(False, result.skip_message or "")
    request = result
    run_config = request.run_config
    if actor:
        run_config["ops"]["promote"]["config"]["triggered_by"] = actor
    wh = open_warehouse(settings)
    before = wh.releases.current()
    run = defs.resolve_job_def(PROMOTE_JOB).execute_in_process(
        run_config={**run_config, **QUIET_LOGS},
        instance=instance,
        # The caller asked for it (and was checked), so the run acts as the caller.
        tags={**request.tags, **wh.identity.tags(), "dagster/sensor_name": "promotion_sensor"},
        raise_on_error=False,
    )
    after = wh.releases.current()
    warnings = tuple((after.gate_summary or {}).get("warnings", ())) if after else ()
    changed = ()
    if after and (before is None or after.release_id != before.release_id):
        changed = tuple(
            a for a, v in after.manifest.items() if before is None or before.manifest.get(a) != v
        )
    error = None
    if not run.success:
        failure = next((e for e in run.all_events if e.is_step_failure), None)
        error = failure.event_specific_data.error.message.strip() if failure else "failed"
    return PromotionOutcome(
        True,
        error or "promoted",
        run.run_id,
        run.success,
        after.release_id if after else None,
        changed,
        warnings if run.success else (),
    )


def rollback_via_job(
    settings: Settings,
    release_id: str,
    *,
    assets: list[str] | None = None,
    actor: str,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Run the rollback job (recorded in Dagster like a UI launch) after validating the release."""
    wh = open_warehouse(settings)
    wh.releases.get(release_id)  # unknown/collected -> clear error
    instance = instance or open_instance(settings)
    job = load_definitions(settings).resolve_job_def(ROLLBACK_JOB)
    config = {"release_id": release_id, "assets": assets or [], "triggered_by": actor}
    return job.execute_in_process(
        run_config={"ops": {"rollback": {"config": config}}, **QUIET_LOGS},
        instance=instance,
        tags={
            "elt/release": release_id,
            "elt/target_environment": "prod",
            CODE_VERSION_TAG: current_code_version(settings.dbt_project_dir).label,
            **wh.identity.tags(),  # the run acts as its caller
        },
        raise_on_error=False,
    )
