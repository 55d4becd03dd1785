"""Turn a finished Dagster run into OpenLineage events: one START and one COMPLETE/FAIL per planned
asset. Called after in-process runs and by a run-status sensor for runs the daemon launched."""

import os
import warnings
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from elt_platform.audit.openlineage import Materialization, build_events, emit, make_transport
from elt_platform.project.lineage import LineageGraph, load_lineage
from elt_platform.store.metadata import MetadataStore
from elt_platform.store.versions import VersionStore


def materializations(instance: dg.DagsterInstance, run_id: str) -> list[Materialization]:
    """What each planned asset of the run did, read from the run's event log."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return []
    environment = run.tags.get("dagster/partition") or run.tags.get("elt/environment") or "unknown"
    params = {"environment": environment, "dagster_job": run.job_name}
    params.update({k: v for k, v in run.tags.items() if k.startswith("elt/")})
    steps: dict[str, datetime] = {}
    failures: dict[str, str] = {}
    found: dict[str, Materialization] = {}
    run_started = None
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        at = datetime.fromtimestamp(record.timestamp, UTC)
        run_started = run_started or at
        kind = event.event_type_value
        if kind == "STEP_START":
            steps[event.step_key] = at
        elif kind == "ASSET_MATERIALIZATION_PLANNED":
            key = event.event_specific_data.asset_key.to_user_string()
            found[key] = Materialization(key, environment, run_id, run.job_name, at, params=params)
            found[key].params = {**params, "step": event.step_key or ""}
        elif kind == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            key = mat.asset_key.to_user_string()
            m = found.setdefault(
                key, Materialization(key, environment, run_id, run.job_name, at, params=params)
            )
            m.started_at = steps.get(event.step_key, m.started_at)
            m.ended_at = at
            version = mat.metadata.get("version_id")
            m.version_id = getattr(version, "value", version)
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            m = found.get(evaluation.asset_key.to_user_string())
            if m is not None:
                severity = getattr(evaluation.severity, "value", None)
                m.checks.append((evaluation.check_name, evaluation.passed, severity))
        elif kind == "STEP_FAILURE":
            error = event.event_specific_data.error
            while error.cause is not None:  # the user's exception, not Dagster's wrapper
                error = error.cause
            failures[event.step_key] = error.message.strip()
    for m in found.values():
        step = m.params.get("step", "")
        m.started_at = steps.get(step, m.started_at)
        if m.version_id is None:
            m.error = failures.get(step) or "the run ended before this asset was materialized"
            m.ended_at = m.ended_at or _run_end(instance, run_id) or m.started_at
    return sorted(found.values(), key=lambda m: (m.started_at, m.asset))


def _run_end(instance: dg.DagsterInstance, run_id: str) -> datetime | None:
    records = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))
    end = records[0].end_time if records else None
    return datetime.fromtimestamp(end, UTC) if end else None


def emit_run_lineage(
    warehouse_dir: Path,
    instance: dg.DagsterInstance,
    run_id: str,
    graph: LineageGraph | None = None,
) -> int:
    """Emit the run's events once (a marker file makes repeated calls no-ops); returns the count."""
    marker = Path(warehouse_dir) / "openlineage" / "emitted" / run_id
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return 0
    versions = VersionStore(Path(warehouse_dir), MetadataStore(Path(warehouse_dir) / "meta.sqlite"))
    events = []
    for m in materializations(instance, run_id):
        version = versions.get(m.asset, m.version_id) if m.version_id else None
        inputs = versions.record(m.asset, m.version_id)["inputs"] if m.version_id else {}
        events += build_events(
            m,
            schema=list(version.schema) if version else None,
            rows=version.rows if version else None,
            size=version.bytes if version else None,
            inputs=inputs,
            graph=graph,
        )
    emit(events, make_transport(warehouse_dir))
    return len(events)


def emit_after_run(settings, instance: dg.DagsterInstance, run_id: str) -> int:
    """Best-effort emission for a finished run: lineage must never fail the run it describes."""
    try:
        try:
            graph = load_lineage(settings)
        except Exception as exc:  # a broken dbt project still gets table-level events
            warnings.warn(f"column lineage unavailable: {exc}", stacklevel=2)
            graph = None
        return emit_run_lineage(settings.warehouse_dir, instance, run_id, graph)
    except Exception as exc:
        warnings.warn(f"OpenLineage emission failed for run {run_id}: {exc}", stacklevel=2)
        return 0


def build_openlineage_sensors(settings) -> list[dg.SensorDefinition]:
    """Run-status sensors emitting events for runs the daemon launched (success and failure)."""

    def make(status: dg.DagsterRunStatus) -> dg.SensorDefinition:
        @dg.run_status_sensor(
            run_status=status,
            name=f"openlineage_on_{status.value.lower()}",
            default_status=dg.DefaultSensorStatus.RUNNING,
        )
        def _sensor(context: dg.RunStatusSensorContext):
            emit_after_run(settings, context.instance, context.dagster_run.run_id)

        return _sensor

    return [make(dg.DagsterRunStatus.SUCCESS), make(dg.DagsterRunStatus.FAILURE)]
