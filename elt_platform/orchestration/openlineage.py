"""OpenLineage plumbing shared by the emitters: transport (the warehouse's JSON-lines file, or
HTTP POSTs to `Settings.openlineage_url`), run facets, and events that never fail a step.

Events are emitted from inside the steps they describe, so in-process runs (which no sensor sees)
emit too: `step_lineage` for asset steps, `publish_lineage` for promote and rollback runs. Dataset
names and facets come from `lineage_datasets`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from typing import Any, TypeVar

import dagster as dg
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    error_message_run,
    execution_parameters_run,
    job_type_job,
    processing_engine_run,
    tags_run,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport

from elt_platform.settings import Settings

JOB_NAMESPACE = "elt_platform"
PRODUCER = "https://github.com/elt-platform/elt-platform/tree/main/elt_platform/orchestration"
T = TypeVar("T")


def make_transport(settings: Settings) -> Transport:
    """HTTP when an OpenLineage URL is configured, else append to the warehouse's events file."""
    if settings.openlineage_url:
        return HttpTransport(
            HttpConfig(url=settings.openlineage_url, timeout=5.0, retry={"total": 1})
        )
    path = settings.openlineage_events_path
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


def read_events(settings: Settings) -> list[dict]:
    """The events written by the file transport, oldest first."""
    path = settings.openlineage_events_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_text(error: BaseException | None) -> str:
    if error is None:
        return "the step ended without materializing this asset"
    text = getattr(error, "description", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0]


class Emitter:
    """One client per step; every failure is a logged warning, never an exception."""

    def __init__(self, context: Any, settings: Settings) -> None:
        self.context = context
        self.settings = settings
        self.client: OpenLineageClient | None = None

    def guard(self, what: str, action: Callable[[], T], default: T | None = None) -> T | None:
        """`action()`, or `default` (and a warning) if it raises."""
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - lineage must never fail the step
            self.context.log.warning(f"OpenLineage: could not {what}: {exc}")
            return default

    def emit(self, event: RunEvent) -> None:
        if self.client is None:
            self.client = OpenLineageClient(transport=make_transport(self.settings))
        self.client.emit(event)

    def run_facets(self, tagged: str | None, **params: str) -> dict[str, Any]:
        """Engine, parameters (with the run's `elt/*` tags) and the environment as a run tag."""
        tags = dict(self.context.run.tags)
        params.update({k: v for k, v in tags.items() if k.startswith("elt/")})
        facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=dg.__version__,
                name="Dagster",
                openlineageAdapterVersion=package_version("openlineage-python"),
            ),
            "executionParameters": execution_parameters_run.ExecutionParametersRunFacet(
                parameters=[
                    execution_parameters_run.ExecutionParameter(key=k, value=str(v))
                    for k, v in sorted(params.items())
                ]
            ),
        }
        if tagged:
            facets["tags"] = tags_run.TagsRunFacet(
                tags=[tags_run.TagsRunFacetFields("environment", tagged, "ELT_PLATFORM")]
            )
        return facets

    def event(
        self,
        state: RunState,
        run_id: str,
        job: Job,
        facets: dict[str, Any],
        inputs: list[InputDataset] | None = None,
        outputs: list[OutputDataset] | None = None,
        error: BaseException | None = None,
    ) -> None:
        if state is RunState.FAIL:
            facets = {
                **facets,
                "errorMessage": error_message_run.ErrorMessageRunFacet(
                    message=_error_text(error), programmingLanguage="PYTHON"
                ),
            }
        self.emit(
            RunEvent(
                eventType=state,
                eventTime=_now(),
                run=Run(runId=run_id, facets=facets),
                job=job,
                inputs=inputs or [],
                outputs=outputs or [],
                producer=PRODUCER,
            )
        )


def lineage_job(name: str, job_type: str) -> Job:
    facet = job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="DAGSTER", jobType=job_type
    )
    return Job(namespace=JOB_NAMESPACE, name=name, facets={"jobType": facet})
