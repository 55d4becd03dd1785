"""OpenLineage run events (START, then COMPLETE or FAIL) for every asset materialization.

Events are built from the Dagster event log of a finished run (step start, materialization,
check evaluations, step failure keep their real timestamps) plus the metadata store (version,
schema, input versions) and the lineage graph (column lineage). They go to a JSON-lines file under
the warehouse by default, or to an HTTP endpoint when `ELT_OPENLINEAGE_URL` is set.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    dataset_version_dataset,
    error_message_run,
    execution_parameters_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_dataset,
    parent_run,
    schema_dataset,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport

from elt_platform.project.column_lineage import ROWS, ColumnRef
from elt_platform.project.lineage import LineageGraph

JOB_NAMESPACE = "elt_platform"
PRODUCER = "https://github.com/elt-platform/elt-platform/tree/main/elt_platform/audit"
URL_VAR = "ELT_OPENLINEAGE_URL"
_SUBTYPES = {
    "identity": "IDENTITY",
    "rename": "IDENTITY",
    "transformation": "TRANSFORMATION",
    "aggregation": "AGGREGATION",
}


@dataclass
class Materialization:
    """One asset of one Dagster run: when its step started and how it ended."""

    asset: str
    environment: str
    dagster_run_id: str
    job_name: str
    started_at: datetime
    ended_at: datetime | None = None
    version_id: str | None = None
    error: str | None = None
    checks: list[tuple[str, bool, str | None]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.version_id is not None and self.error is None

    @property
    def run_id(self) -> str:
        """A stable UUID per (Dagster run, asset): OpenLineage runs are per materialization."""
        return str(uuid.uuid5(uuid.UUID(self.dagster_run_id), self.asset))


def events_path(warehouse_dir: Path) -> Path:
    return Path(warehouse_dir) / "openlineage" / "events.jsonl"


def make_transport(warehouse_dir: Path, environ: Mapping[str, str] | None = None) -> Transport:
    """HTTP when ELT_OPENLINEAGE_URL is set, else append to the warehouse's events file."""
    env = os.environ if environ is None else environ
    url = env.get(URL_VAR)
    if url:
        return HttpTransport(HttpConfig(url=url, timeout=5.0, retry={"total": 1}))
    path = events_path(warehouse_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


def dataset_namespace(environment: str) -> str:
    return f"elt://{environment}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_events(
    m: Materialization,
    *,
    schema: list[tuple[str, str]] | None,
    rows: int | None,
    size: int | None,
    inputs: Mapping[str, str],
    graph: LineageGraph | None,
) -> list[RunEvent]:
    """The START event and the COMPLETE (or FAIL) event of one materialization."""
    info = graph.assets.get(m.asset) if graph else None
    namespace = dataset_namespace(m.environment)
    run_facets: dict[str, Any] = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=m.dagster_run_id),
            job=parent_run.Job(namespace=JOB_NAMESPACE, name=m.job_name),
        ),
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=_iso(m.started_at),
            nominalEndTime=_iso(m.ended_at) if m.ended_at else None,
        ),
        "executionParameters": execution_parameters_run.ExecutionParametersRunFacet(
            parameters=[
                execution_parameters_run.ExecutionParameter(key=k, value=str(v))
                for k, v in sorted(m.params.items())
            ]
        ),
    }
    job = Job(
        namespace=JOB_NAMESPACE,
        name=f"{m.environment}.{m.asset}",
        facets={
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="DAGSTER", jobType="ASSET"
            )
        },
    )
    input_datasets = [
        InputDataset(
            namespace=namespace,
            name=up,
            facets={
                "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=v)
            },
        )
        for up, v in sorted(inputs.items())
    ]
    start = RunEvent(
        eventType=RunState.START,
        eventTime=_iso(m.started_at),
        run=Run(runId=m.run_id, facets=run_facets),
        job=job,
        inputs=input_datasets,
        outputs=[OutputDataset(namespace=namespace, name=m.asset)],
        producer=PRODUCER,
    )
    ended = _iso(m.ended_at or m.started_at)
    if not m.succeeded:
        failed_facets = {
            **run_facets,
            "errorMessage": error_message_run.ErrorMessageRunFacet(
                message=m.error or "the step ended without materializing this asset",
                programmingLanguage="PYTHON",
            ),
        }
        return [
            start,
            RunEvent(
                eventType=RunState.FAIL,
                eventTime=ended,
                job=job,
                inputs=input_datasets,
                run=Run(runId=m.run_id, facets=failed_facets),
                outputs=[OutputDataset(namespace=namespace, name=m.asset)],
                producer=PRODUCER,
            ),
        ]
    facets: dict[str, Any] = {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in schema or []
            ]
        ),
        "version": _version_facet(m.version_id),
    }
    if graph is not None and info is not None:
        facets["columnLineage"] = _column_lineage(graph, m.asset, namespace)
        if info.owner:
            facets["ownership"] = ownership_dataset.OwnershipDatasetFacet(
                owners=[ownership_dataset.Owner(name=info.owner, type="OWNER")]
            )
    if m.checks:
        quality = data_quality_assertions_dataset
        facets["dataQualityAssertions"] = quality.DataQualityAssertionsDatasetFacet(
            assertions=[
                quality.Assertion(assertion=name, success=passed, severity=severity)
                for name, passed, severity in m.checks
            ]
        )
    output = OutputDataset(
        namespace=namespace,
        name=m.asset,
        facets=facets,
        outputFacets={
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=rows, size=size
            )
        },
    )
    complete = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=ended,
        run=Run(runId=m.run_id, facets=run_facets),
        job=job,
        inputs=input_datasets,
        outputs=[output],
        producer=PRODUCER,
    )
    return [start, complete]


def _version_facet(version_id: str) -> dataset_version_dataset.DatasetVersionDatasetFacet:
    return dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version_id)


def _column_lineage(
    graph: LineageGraph, asset: str, namespace: str
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    fields = {}
    for column in graph.assets[asset].columns:
        inputs = [
            column_lineage_dataset.InputField(
                namespace=namespace,
                name=e.source.asset,
                field=e.source.column,
                transformations=[
                    column_lineage_dataset.Transformation(
                        type="DIRECT",
                        subtype=_SUBTYPES[e.kind],
                        description=e.transformation,
                        masking=False,
                    )
                ],
            )
            for e in graph.upstream_edges(ColumnRef(asset, column))
            if e.source.column != ROWS  # row-count dependencies have no input field
        ]
        if inputs:
            fields[column] = column_lineage_dataset.Fields(inputFields=inputs)
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields)


def emit(events: list[RunEvent], transport: Transport) -> None:
    client = OpenLineageClient(transport=transport)
    for event in events:
        client.emit(event)


def read_events(warehouse_dir: Path) -> list[dict]:
    """The events written by the file transport, oldest first."""
    path = events_path(warehouse_dir)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
