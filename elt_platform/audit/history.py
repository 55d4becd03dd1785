"""Run history for the catalog: Dagster runs and asset check results, read from the instance, then
written to the catalog together with the lineage graph (`refresh`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from elt_platform.audit.metadata_catalog import refresh_catalog
from elt_platform.orchestration.instance import open_instance
from elt_platform.project.lineage import load_lineage
from elt_platform.settings import Settings

RUN_LIMIT = 500


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


def dagster_history(
    instance: dg.DagsterInstance, limit: int = RUN_LIMIT
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The latest runs (newest first) and every asset check evaluation they recorded."""
    runs, checks = [], []
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        env = run.tags.get("dagster/partition") or run.tags.get("elt/environment")
        runs.append(
            {
                "run_id": run.run_id,
                "job_name": run.job_name,
                "status": run.status.value,
                "environment": env,
                "release_id": run.tags.get("elt/release"),
                "started_at": _iso(record.start_time),
                "ended_at": _iso(record.end_time),
                "tags_json": json.dumps(dict(run.tags), sort_keys=True),
            }
        )
        for entry in instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ):
            evaluation = entry.dagster_event.event_specific_data
            checks.append(
                {
                    "run_id": run.run_id,
                    "asset": evaluation.asset_key.to_user_string(),
                    "check_name": evaluation.check_name,
                    "passed": int(evaluation.passed),
                    "severity": getattr(evaluation.severity, "value", None),
                    "at": _iso(entry.timestamp),
                    "environment": env,
                }
            )
    return runs, checks


def refresh(settings: Settings, instance: dg.DagsterInstance | None = None) -> None:
    """Rebuild the catalog's derived rows from code (lineage, contracts) and Dagster history."""
    runs, checks = dagster_history(instance or open_instance(settings))
    refresh_catalog(settings.metadata_path, load_lineage(settings), runs, checks)
