"""The audit domain's Dagster definitions: the living docs site, regenerated whenever prod moves
(a successful promotion or rollback run). OpenLineage events are emitted by the steps themselves
(`orchestration/step_lineage.py`, `orchestration/publish_lineage.py`)."""

from __future__ import annotations

import dagster as dg

from elt_platform.audit.docs import build_docs
from elt_platform.orchestration.names import PROMOTE_JOB, ROLLBACK_JOB
from elt_platform.settings import Settings


def build_docs_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="docs_after_release",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Regenerates the docs site after prod moved (promotion or rollback).",
    )
    def docs_after_release(context: dg.RunStatusSensorContext):
        if context.dagster_run.job_name not in (PROMOTE_JOB, ROLLBACK_JOB):
            return dg.SkipReason("not a promotion or rollback run")
        # A docs failure never affects the release: it is already published.
        try:
            index = build_docs(settings, context.instance)
        except Exception as exc:  # noqa: BLE001
            return dg.SkipReason(f"could not regenerate the docs site: {exc}")
        context.log.info(f"docs site regenerated: {index}")
        return None

    return docs_after_release


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(sensors=[build_docs_sensor(settings)])
