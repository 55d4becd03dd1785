"""A JSON Schema of OpenLineage run events, derived from the spec classes that the installed
`openlineage-python` package generates from the OpenLineage JSON schemas (no network needed)."""

import enum
import types
import typing
from typing import Any

import attr
from openlineage.client.event_v2 import RunEvent
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

# Facet names the spec gives each facet (keys of the `facets` maps).
FACETS = {
    "schema": schema_dataset.SchemaDatasetFacet,
    "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
    "version": dataset_version_dataset.DatasetVersionDatasetFacet,
    "ownership": ownership_dataset.OwnershipDatasetFacet,
    "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet,
    "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
    "parent": parent_run.ParentRunFacet,
    "nominalTime": nominal_time_run.NominalTimeRunFacet,
    "errorMessage": error_message_run.ErrorMessageRunFacet,
    "executionParameters": execution_parameters_run.ExecutionParametersRunFacet,
    "jobType": job_type_job.JobTypeJobFacet,
}
FORMATS = {
    "eventTime": "date-time",
    "runId": "uuid",
    "producer": "uri",
    "schemaURL": "uri",
    "_producer": "uri",
    "_schemaURL": "uri",
    "nominalStartTime": "date-time",
    "nominalEndTime": "date-time",
}


def run_event_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    root = _class_schema(RunEvent, defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs, **root}


def _class_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if name not in defs:
        defs[name] = {}  # placeholder for recursive types
        hints = typing.get_type_hints(cls)
        props, required = {}, []
        for f in attr.fields(cls):
            key = f.name if not f.name.startswith("_") else f.name  # `_producer` keeps its _
            schema = _type_schema(hints.get(f.name, Any), defs, f.name)
            if f.name in FORMATS:
                schema = {**schema, "format": FORMATS[f.name]}
            props[key] = schema
            if f.default is attr.NOTHING or f.name in {"_producer", "_schemaURL"}:
                required.append(key)
        defs[name] = {"type": "object", "properties": props, "required": required}
    return {"$ref": f"#/$defs/{name}"}


def _type_schema(tp: Any, defs: dict[str, Any], field_name: str) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _type_schema(options[0], defs, field_name) if len(options) == 1 else {}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], defs, field_name)}
    if origin is dict:
        value = _type_schema(args[1], defs, field_name)
        if field_name.lower().endswith("facets"):
            named = {k: _class_schema(c, defs) for k, c in FACETS.items()}
            return {"type": "object", "properties": named, "additionalProperties": value}
        return {"type": "object", "additionalProperties": value}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if attr.has(tp):
        return _class_schema(tp, defs)
    return {}


def format_checker():
    """jsonschema's checker plus `date-time` and `uri`, which it only checks with extra packages."""
    from datetime import datetime
    from urllib.parse import urlparse

    import jsonschema

    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        parsed = urlparse(value) if isinstance(value, str) else None
        return parsed is None or bool(parsed.scheme and (parsed.netloc or parsed.path))

    return checker


def validator():
    import jsonschema

    return jsonschema.Draft202012Validator(run_event_schema(), format_checker=format_checker())
