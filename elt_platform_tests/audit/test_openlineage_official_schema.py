"""OpenLineage events against the *official* OpenLineage JSON Schema (copied verbatim into
`elt_platform_tests/data/openlineage/`), not a schema derived from the client's classes."""

from __future__ import annotations

import copy
import json
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    datasource_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
    execution_parameters_run,
    job_type_job,
    lifecycle_state_change_dataset,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
    source_code_location_job,
    sql_job,
    storage_dataset,
    symlinks_dataset,
    tags_job,
)
from openlineage.client.serde import Serde

from elt_platform_tests import openlineage_validation as ol
from elt_platform_tests.openlineage_validation import event_errors, validate_event, validate_file

PRODUCER = "https://github.com/elt-platform/elt-platform/tree/main/elt_platform/audit"
NS = "duckdb:///warehouse/dev.duckdb"


def client_event() -> RunEvent:
    """A COMPLETE event using every facet the platform may emit, built with the client."""
    run_id, parent_id = str(uuid.uuid4()), str(uuid.uuid4())
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    field = column_lineage_dataset.InputField
    xform = column_lineage_dataset.Transformation
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=(start + timedelta(seconds=9)).isoformat(),
        producer=PRODUCER,
        run=Run(
            runId=run_id,
            facets={
                "parent": parent_run.ParentRunFacet(
                    run=parent_run.Run(runId=parent_id),
                    job=parent_run.Job(namespace="elt_platform", name="daily_job"),
                ),
                "nominalTime": nominal_time_run.NominalTimeRunFacet(
                    nominalStartTime=start.isoformat(),
                    nominalEndTime=(start + timedelta(days=1)).isoformat(),
                ),
                "executionParameters": execution_parameters_run.ExecutionParametersRunFacet(
                    parameters=[execution_parameters_run.ExecutionParameter(key="k", value="v")]
                ),
                "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                    version="1.9.0", name="Dagster", openlineageAdapterVersion="1.54.0"
                ),
                "errorMessage": error_message_run.ErrorMessageRunFacet(
                    message="a warning", programmingLanguage="PYTHON"
                ),
                "elt_environment": {  # a custom facet, as the client accepts a plain dict
                    "_producer": PRODUCER,
                    "_schemaURL": "https://example.com/schemas/EnvironmentRunFacet.json",
                    "environment": "dev",
                },
            },
        ),
        job=Job(
            namespace="elt_platform",
            name="dev.orders",
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="DAGSTER", jobType="ASSET"
                ),
                "sql": sql_job.SQLJobFacet(query="select 1", dialect="duckdb"),
                "sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet(
                    type="git", url="https://github.com/elt-platform/elt-platform/blob/main/x.sql"
                ),
                "documentation": documentation_job.DocumentationJobFacet(description="orders"),
                "tags": tags_job.TagsJobFacet(
                    tags=[tags_job.TagsJobFacetFields(key="environment", value="dev")]
                ),
            },
        ),
        inputs=[
            InputDataset(
                namespace="file",
                name="/landing/orders.csv",
                facets={
                    "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                        datasetVersion="v0"
                    ),
                    "dataSource": datasource_dataset.DatasourceDatasetFacet(
                        name="landing", uri="file:///landing"
                    ),
                    "storage": storage_dataset.StorageDatasetFacet(
                        storageLayer="file", fileFormat="csv"
                    ),
                },
                inputFacets={
                    "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
                        rowCount=10,
                        columnMetrics={
                            "id": data_quality_metrics_input_dataset.ColumnMetrics(
                                nullCount=0, distinctCount=10
                            )
                        },
                    ),
                    "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                        assertions=[
                            data_quality_assertions_dataset.Assertion(
                                assertion="not_null", success=True, column="id"
                            )
                        ]
                    ),
                },
            )
        ],
        outputs=[
            OutputDataset(
                namespace=NS,
                name="dev.main.orders",
                facets={
                    "schema": schema_dataset.SchemaDatasetFacet(
                        fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="BIGINT")]
                    ),
                    "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                        fields={
                            "id": column_lineage_dataset.Fields(
                                inputFields=[
                                    field(
                                        namespace="file",
                                        name="/landing/orders.csv",
                                        field="id",
                                        transformations=[
                                            xform(
                                                type="DIRECT",
                                                subtype="IDENTITY",
                                                description="",
                                                masking=False,
                                            )
                                        ],
                                    )
                                ]
                            )
                        },
                        dataset=[
                            field(
                                namespace="file",
                                name="/landing/orders.csv",
                                field="status",
                                transformations=[xform(type="INDIRECT", subtype="FILTER")],
                            )
                        ],
                    ),
                    "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                        datasetVersion="v1"
                    ),
                    "ownership": ownership_dataset.OwnershipDatasetFacet(
                        owners=[ownership_dataset.Owner(name="team:finance", type="OWNER")]
                    ),
                    "documentation": documentation_dataset.DocumentationDatasetFacet(
                        description="orders"
                    ),
                    "lifecycleStateChange": lifecycle_state_change_dataset.LifecycleStateChangeDatasetFacet(
                        lifecycleStateChange=lifecycle_state_change_dataset.LifecycleStateChange.OVERWRITE
                    ),
                    "symlinks": symlinks_dataset.SymlinksDatasetFacet(
                        identifiers=[
                            symlinks_dataset.Identifier(
                                namespace="file", name="/warehouse/dev.duckdb", type="FILE"
                            )
                        ]
                    ),
                },
                outputFacets={
                    "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        rowCount=10, size=1024
                    )
                },
            )
        ],
    )


def client_dict() -> dict:
    return Serde.to_dict(client_event())


def test_format_checkers_enforce_date_time_uri_and_uuid():
    checker = ol.format_checker()
    for fmt, (good, bad) in ol._PROBES.items():
        assert checker.conforms(good, fmt), (fmt, good)
        assert not checker.conforms(bad, fmt), (fmt, bad)
    assert set(ol.FORMAT_IMPLEMENTATIONS) == {"date-time", "uri", "uuid"}
    assert ol.is_rfc3339_date_time("2024-02-29T23:59:60.5+05:30")
    assert not ol.is_rfc3339_date_time("2023-02-29T00:00:00Z")  # no such day
    assert not ol.is_uri("https://example.com/a b") and not ol.is_uri("/relative/path")


def test_facet_map_matches_the_spec_files():
    """Every mapped definition exists and extends the base facet of its location, and every
    facet definition in the copied spec is mapped (so none is validated only as a base facet)."""
    mapped = set()
    for location, facets in ol.FACET_SCHEMAS.items():
        for name, (file_name, definition) in facets.items():
            schema = json.loads((ol.SPEC_DIR / "facets" / file_name).read_text())
            bases = [
                part["$ref"] for part in schema["$defs"][definition]["allOf"] if "$ref" in part
            ]
            assert bases == [f"{ol.CORE_ID}#/$defs/{ol.LOCATION_BASE[location]}"], name
            mapped.add((file_name, definition))
    in_spec = {
        (path.name, definition)
        for path in (ol.SPEC_DIR / "facets").glob("*.json")
        for definition, body in json.loads(path.read_text())["$defs"].items()
        if any(part.get("$ref", "").startswith(ol.CORE_ID) for part in body.get("allOf", []))
    }
    assert in_spec == mapped


@pytest.mark.parametrize(
    "module, cls",
    [
        (schema_dataset, "SchemaDatasetFacet"),
        (column_lineage_dataset, "ColumnLineageDatasetFacet"),
        (dataset_version_dataset, "DatasetVersionDatasetFacet"),
        (ownership_dataset, "OwnershipDatasetFacet"),
        (data_quality_assertions_dataset, "DataQualityAssertionsDatasetFacet"),
        (output_statistics_output_dataset, "OutputStatisticsOutputDatasetFacet"),
        (data_quality_metrics_input_dataset, "DataQualityMetricsInputDatasetFacet"),
        (parent_run, "ParentRunFacet"),
        (nominal_time_run, "NominalTimeRunFacet"),
        (error_message_run, "ErrorMessageRunFacet"),
        (execution_parameters_run, "ExecutionParametersRunFacet"),
        (job_type_job, "JobTypeJobFacet"),
        (sql_job, "SQLJobFacet"),
        (source_code_location_job, "SourceCodeLocationJobFacet"),
        (documentation_job, "DocumentationJobFacet"),
        (documentation_dataset, "DocumentationDatasetFacet"),
        (datasource_dataset, "DatasourceDatasetFacet"),
        (lifecycle_state_change_dataset, "LifecycleStateChangeDatasetFacet"),
        (storage_dataset, "StorageDatasetFacet"),
        (symlinks_dataset, "SymlinksDatasetFacet"),
        (processing_engine_run, "ProcessingEngineRunFacet"),
    ],
)
def test_client_facet_versions_match_the_spec_snapshot(module, cls):
    """The installed client claims exactly the facet schema versions we validate against."""
    claimed = getattr(module, cls)._get_schema()
    ours = {
        ol.facet_schema_ref(location, name)
        for location, facets in ol.FACET_SCHEMAS.items()
        for name, (_, definition) in facets.items()
        if definition == cls
    }
    assert ours == {claimed}


def test_client_built_event_validates(tmp_path):
    event = client_dict()
    assert event["schemaURL"] == f"{ol.CORE_ID}#/$defs/RunEvent"
    validate_event(event)
    validate_event(json.loads(Serde.to_json(client_event())))  # as written to the wire
    validate_event(event, strict_placement=True)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(Serde.to_json(client_event()) for _ in range(3)) + "\n\n")
    assert validate_file(path) == 3


def test_platform_built_datasets_validate_with_strict_placement(tmp_path):
    """The platform's own dataset builders (outside a Dagster run): a version output with column
    lineage, a checked input, a source input and a prod view, in one event."""
    from elt_platform.orchestration.lineage_datasets import (
        DatasetName,
        release_output,
        source_column_lineage,
        source_input,
        version_input,
        version_output,
    )
    from elt_platform.store.versions import Version

    folder = tmp_path / "versions" / "raw__orders" / "v1"
    version = Version("raw/orders", "v1", folder / "data.parquet", 10, 100, (("id", "BIGINT"),), "")
    source = DatasetName("file", str(tmp_path / "orders.parquet"))
    catalog = tmp_path / "catalogs" / "staging.duckdb"
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat(),
        producer=PRODUCER,
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="elt_platform", name="raw/orders"),
        inputs=[source_input(source), version_input(version, "staging", {"contract": True})],
        outputs=[
            version_output(
                version,
                "staging",
                catalog,
                column_lineage=source_column_lineage(["id"], [source], ["id"]),
                owner="team:data",
            ),
            release_output(version, "r0001-abc", tmp_path / "catalogs" / "prod.duckdb"),
        ],
    )
    wire = json.loads(Serde.to_json(event))
    validate_event(wire, strict_placement=True)
    assert wire["outputs"][0]["name"] == str(folder)
    assert wire["outputs"][1]["name"] == "prod.raw.orders"
    assert "dataQualityAssertions" in wire["inputs"][1]["inputFacets"]


def _spec_examples():
    for path in sorted((ol.SPEC_DIR / "spec_tests").glob("*/*.json")):
        for name, facet in json.loads(path.read_text()).items():
            fragment = facet.get("_schemaURL", "").rpartition("/")[2]
            places = [
                (location, definition)
                for location, facets in ol.FACET_SCHEMAS.items()
                for key, (file_name, definition) in facets.items()
                if key == name and file_name == f"{path.parent.name}.json"
            ]
            places = [p for p in places if p[1] == fragment] or places
            yield pytest.param(places[0][0], name, facet, id=f"{path.parent.name}/{path.name}")


def _with_facet(location: str, name: str, facet: dict) -> dict:
    event = copy.deepcopy(client_dict())
    target = {
        "run": event["run"].setdefault("facets", {}),
        "job": event["job"].setdefault("facets", {}),
        "dataset": event["inputs"][0].setdefault("facets", {}),
        "inputDataset": event["inputs"][0].setdefault("inputFacets", {}),
        "outputDataset": event["outputs"][0].setdefault("outputFacets", {}),
    }[location]
    target[name] = facet
    return event


@pytest.mark.parametrize("location, name, facet", _spec_examples())
def test_official_spec_examples_validate(location, name, facet):
    # The spec's examples carry older or informal _schemaURLs; their content must validate.
    assert event_errors(_with_facet(location, name, facet), check_schema_urls=False) == []


def _break(mutate):
    event = client_dict()
    mutate(event)
    return event


def _set(path, value):
    def mutate(event):
        target = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _lineage_input(event):
    return event["outputs"][0]["facets"]["columnLineage"]["fields"]["id"]["inputFields"][0]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        pytest.param(
            lambda e: e.pop("eventTime"),
            "$: 'eventTime' is a required property",
            id="missing-eventTime",
        ),
        pytest.param(
            _set(["eventTime"], "2026-01-02T03:04:05"),
            "$.eventTime: '2026-01-02T03:04:05' is not a 'date-time'",
            id="eventTime-without-offset",
        ),
        pytest.param(
            _set(["run", "runId"], "not-a-uuid"),
            "$.run.runId: 'not-a-uuid' is not a 'uuid'",
            id="non-uuid-runId",
        ),
        pytest.param(
            _set(["run", "runId"], uuid.UUID(int=7).hex),
            f"$.run.runId: '{uuid.UUID(int=7).hex}' is not a 'uuid'",
            id="hyphenless-runId",
        ),
        pytest.param(
            _set(["producer"], "elt platform"),
            "$.producer: 'elt platform' is not a 'uri'",
            id="producer-not-uri",
        ),
        pytest.param(
            lambda e: e["run"]["facets"]["parent"].pop("_producer"),
            "$.run.facets.parent: '_producer' is a required property",
            id="standard-facet-missing-_producer",
        ),
        pytest.param(
            lambda e: e["run"]["facets"]["elt_environment"].pop("_producer"),
            "$.run.facets.elt_environment: '_producer' is a required property",
            id="custom-facet-missing-_producer",
        ),
        pytest.param(
            lambda e: e["outputs"][0]["outputFacets"]["outputStatistics"].pop("_schemaURL"),
            "$.outputs[0].outputFacets.outputStatistics: '_schemaURL' is a required property",
            id="output-facet-missing-_schemaURL",
        ),
        pytest.param(
            lambda e: _lineage_input(e).update(transformations=["IDENTITY"]),
            "$.outputs[0].facets.columnLineage.fields.id.inputFields[0]"
            ".transformations[0]: 'IDENTITY' is not of type 'object'",
            id="columnLineage-transformation-as-string",
        ),
        pytest.param(
            lambda e: _lineage_input(e).update(transformations=[{"subtype": "IDENTITY"}]),
            "$.outputs[0].facets.columnLineage.fields.id.inputFields[0]"
            ".transformations[0]: 'type' is a required property",
            id="columnLineage-transformation-without-type",
        ),
        pytest.param(
            lambda e: _lineage_input(e).update(transformations={"type": "DIRECT"}),
            "$.outputs[0].facets.columnLineage.fields.id.inputFields[0]"
            ".transformations: {'type': 'DIRECT'} is not of type 'array'",
            id="columnLineage-transformations-not-a-list",
        ),
        pytest.param(
            lambda e: e["outputs"][0]["facets"]["columnLineage"]["dataset"][0].pop("field"),
            "$.outputs[0].facets.columnLineage.dataset[0]: 'field' is a required property",
            id="columnLineage-dataset-entry-without-field",
        ),
        pytest.param(
            lambda e: e["run"]["facets"]["nominalTime"].update(nominalStartTime="yesterday"),
            "$.run.facets.nominalTime.nominalStartTime: 'yesterday' is not a 'date-time'",
            id="facet-format",
        ),
        pytest.param(
            lambda e: e["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0].pop(
                "success"
            ),
            "$.inputs[0].inputFacets.dataQualityAssertions.assertions[0]: 'success' is a "
            "required property",
            id="assertion-without-success",
        ),
        pytest.param(
            _set(
                ["outputs", 0, "facets", "schema", "_schemaURL"],
                "https://openlineage.io/spec/facets/1-1-0/SchemaDatasetFacet.json",
            ),
            "$.outputs[0].facets.schema._schemaURL: _schemaURL 'https://openlineage.io/"
            "spec/facets/1-1-0/SchemaDatasetFacet.json' claims another version",
            id="facet-schemaURL-other-version",
        ),
    ],
)
def test_broken_events_are_rejected(mutate, expected):
    event = _break(mutate)
    with pytest.raises(AssertionError) as raised:
        validate_event(event)
    assert expected in str(raised.value)


def test_the_client_does_not_catch_what_the_spec_rejects():
    """Why the official schema matters: the client accepts these, the spec does not."""
    event = RunEvent(
        eventType=RunState.START,
        eventTime="2026-01-02T03:04:05",  # no UTC offset: not RFC 3339
        producer="elt platform",  # not a URI
        run=Run(runId=uuid.UUID(int=7).hex),  # UUID() parses it, but it has no hyphens
        job=Job(namespace="elt_platform", name="dev.orders"),
    )
    problems = event_errors(Serde.to_dict(event))
    assert [p.split(":")[0] for p in problems] == ["$.eventTime", "$.producer", "$.run.runId"]


def test_strict_placement_flags_facets_outside_their_location():
    event = client_dict()
    assertions = event["inputs"][0]["inputFacets"]["dataQualityAssertions"]
    event["outputs"][0]["facets"]["dataQualityAssertions"] = copy.deepcopy(assertions)
    validate_event(event)  # the JSON schema allows it; its content is still checked
    with pytest.raises(AssertionError, match="belongs in inputs\\[\\].inputFacets"):
        validate_event(event, strict_placement=True)
    event["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"] = [{"success": True}]
    with pytest.raises(AssertionError, match="'assertion' is a required property"):
        validate_event(event)


def test_validate_file_reports_line_numbers(tmp_path):
    good = Serde.to_json(client_event())
    bad = json.dumps(_break(lambda e: e.pop("eventTime")))
    path = tmp_path / "events.jsonl"
    path.write_text(f"{good}\n{bad}\n{{not json\n")
    with pytest.raises(AssertionError) as raised:
        validate_file(path)
    message = str(raised.value)
    assert "line 2: $: 'eventTime' is a required property" in message
    assert "line 3: not JSON" in message and "line 1:" not in message


def test_validation_is_offline(monkeypatch):
    ol.registry.cache_clear()
    ol._validator.cache_clear()

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    validate_event(client_dict())
    with pytest.raises(Exception, match="nowhere.example"):
        ol.registry().get_or_retrieve("https://nowhere.example/Other.json")
    assert Path(ol.SPEC_DIR / "OpenLineage.json").is_file()
