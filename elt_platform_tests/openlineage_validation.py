"""Validate OpenLineage events against the official OpenLineage JSON Schema, fully offline.

The schemas under `data/openlineage/` are verbatim copies of `spec/OpenLineage.json` and
`spec/facets/*.json` from the OpenLineage repository (see the README there for the commit).
Unlike a schema derived from the `openlineage-python` classes, they can catch a client bug.

An event is validated in two passes:

1. against `OpenLineage.json` (its root `oneOf` RunEvent/DatasetEvent/JobEvent, plus the matching
   `$defs/...Event` for readable errors). This already checks every facet against its *base*
   definition (`RunFacet`, `JobFacet`, `DatasetFacet`, `InputDatasetFacet`,
   `OutputDatasetFacet`, all built on `BaseFacet`: `_producer` and `_schemaURL` required);
2. each facet in `run.facets`, `job.facets`, `inputs[].facets`, `inputs[].inputFacets`,
   `outputs[].facets`, `outputs[].outputFacets` against its own facet schema.

A facet schema file describes a *facets map*: its top-level `properties` is keyed by the facet
name (e.g. `{"columnLineage": {"$ref": "#/$defs/ColumnLineageDatasetFacet"}}`) and the facet
itself is a definition under `$defs`. Facet names are only unique per location (`tags` exists
for runs, jobs and datasets; `documentation` and `ownership` for jobs and datasets;
`dataQualityMetrics` for `facets` and `inputFacets`), so each facet is validated against
`<file $id>#/$defs/<Definition>` chosen by (location, facet name) — see `FACET_SCHEMAS`.
Facets whose name is not in the map (custom facets) are validated against the base definition
of their location.

No network access: every `$ref` (`https://openlineage.io/spec/...`) resolves through a
`referencing.Registry` built from the local files, and any other URI fails loudly.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

SPEC_DIR = Path(__file__).parent / "data" / "openlineage"
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

# Where facets live in an event, and the base facet definition (in OpenLineage.json) of each.
LOCATION_BASE = {
    "run": "RunFacet",
    "job": "JobFacet",
    "dataset": "DatasetFacet",  # inputs[].facets and outputs[].facets
    "inputDataset": "InputDatasetFacet",  # inputs[].inputFacets
    "outputDataset": "OutputDatasetFacet",  # outputs[].outputFacets
}

# (location, facet name) -> (facet schema file, definition under its `$defs`).
FACET_SCHEMAS: dict[str, dict[str, tuple[str, str]]] = {
    "run": {
        "parent": ("ParentRunFacet.json", "ParentRunFacet"),
        "nominalTime": ("NominalTimeRunFacet.json", "NominalTimeRunFacet"),
        "errorMessage": ("ErrorMessageRunFacet.json", "ErrorMessageRunFacet"),
        "executionParameters": ("ExecutionParametersRunFacet.json", "ExecutionParametersRunFacet"),
        "processing_engine": ("ProcessingEngineRunFacet.json", "ProcessingEngineRunFacet"),
        "environmentVariables": (
            "EnvironmentVariablesRunFacet.json",
            "EnvironmentVariablesRunFacet",
        ),
        "externalQuery": ("ExternalQueryRunFacet.json", "ExternalQueryRunFacet"),
        "extractionError": ("ExtractionErrorRunFacet.json", "ExtractionErrorRunFacet"),
        "jobDependencies": ("JobDependenciesRunFacet.json", "JobDependenciesRunFacet"),
        "tags": ("TagsRunFacet.json", "TagsRunFacet"),
        "test": ("TestRunFacet.json", "TestRunFacet"),
    },
    "job": {
        "jobType": ("JobTypeJobFacet.json", "JobTypeJobFacet"),
        "sql": ("SQLJobFacet.json", "SQLJobFacet"),
        "sourceCode": ("SourceCodeJobFacet.json", "SourceCodeJobFacet"),
        "sourceCodeLocation": ("SourceCodeLocationJobFacet.json", "SourceCodeLocationJobFacet"),
        "documentation": ("DocumentationJobFacet.json", "DocumentationJobFacet"),
        "ownership": ("OwnershipJobFacet.json", "OwnershipJobFacet"),
        "tags": ("TagsJobFacet.json", "TagsJobFacet"),
        "lineage": ("LineageFacet.json", "LineageJobFacet"),
    },
    "dataset": {
        "schema": ("SchemaDatasetFacet.json", "SchemaDatasetFacet"),
        "columnLineage": ("ColumnLineageDatasetFacet.json", "ColumnLineageDatasetFacet"),
        "version": ("DatasetVersionDatasetFacet.json", "DatasetVersionDatasetFacet"),
        "ownership": ("OwnershipDatasetFacet.json", "OwnershipDatasetFacet"),
        "documentation": ("DocumentationDatasetFacet.json", "DocumentationDatasetFacet"),
        "dataSource": ("DatasourceDatasetFacet.json", "DatasourceDatasetFacet"),
        "lifecycleStateChange": (
            "LifecycleStateChangeDatasetFacet.json",
            "LifecycleStateChangeDatasetFacet",
        ),
        "storage": ("StorageDatasetFacet.json", "StorageDatasetFacet"),
        "symlinks": ("SymlinksDatasetFacet.json", "SymlinksDatasetFacet"),
        "catalog": ("CatalogDatasetFacet.json", "CatalogDatasetFacet"),
        "datasetType": ("DatasetTypeDatasetFacet.json", "DatasetTypeDatasetFacet"),
        "hierarchy": ("HierarchyDatasetFacet.json", "HierarchyDatasetFacet"),
        "dataQualityMetrics": (
            "DataQualityMetricsDatasetFacet.json",
            "DataQualityMetricsDatasetFacet",
        ),
        "tags": ("TagsDatasetFacet.json", "TagsDatasetFacet"),
        "lineage": ("LineageFacet.json", "LineageDatasetFacet"),
    },
    "inputDataset": {
        "dataQualityMetrics": (
            "DataQualityMetricsInputDatasetFacet.json",
            "DataQualityMetricsInputDatasetFacet",
        ),
        "dataQualityAssertions": (
            "DataQualityAssertionsDatasetFacet.json",
            "DataQualityAssertionsDatasetFacet",
        ),
        "inputStatistics": (
            "InputStatisticsInputDatasetFacet.json",
            "InputStatisticsInputDatasetFacet",
        ),
        "subset": ("BaseSubsetDatasetFacet.json", "InputSubsetInputDatasetFacet"),
    },
    "outputDataset": {
        "outputStatistics": (
            "OutputStatisticsOutputDatasetFacet.json",
            "OutputStatisticsOutputDatasetFacet",
        ),
        "subset": ("BaseSubsetDatasetFacet.json", "OutputSubsetOutputDatasetFacet"),
    },
}
_DATASET_LOCATIONS = ("dataset", "inputDataset", "outputDataset")
_LOCATION_KEYS = {
    "dataset": "inputs[]/outputs[].facets",
    "inputDataset": "inputs[].inputFacets",
    "outputDataset": "outputs[].outputFacets",
}


# --------------------------------------------------------------------------- format checking
# jsonschema only *asserts* `format` when given a FormatChecker, and its `date-time` and `uri`
# checkers are silently no-ops unless optional packages (rfc3339-validator, rfc3987 or
# rfc3986-validator) are installed. `uuid` is built in. Missing checkers are replaced by the
# small strict implementations below.

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt]([01]\d|2[0-3]):([0-5]\d):([0-5]\d|60)(\.\d+)?"
    r"([Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")


def is_rfc3339_date_time(value: object) -> bool:
    """RFC 3339 `date-time` (JSON Schema's definition): full date, time and a UTC offset."""
    if not isinstance(value, str):
        return True  # formats only apply to strings
    m = _RFC3339.match(value)
    if not m:
        return False
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def is_uri(value: object) -> bool:
    """RFC 3986 absolute URI: a scheme, then only URI characters (`%` must escape two hex)."""
    if not isinstance(value, str):
        return True
    if not _URI_SCHEME.match(value) or not _URI_CHARS.match(value):
        return False
    try:
        urlsplit(value).port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return True


_PROBES = {  # format -> (valid sample, invalid sample)
    "date-time": ("2024-05-06T07:08:09.123Z", "2024-05-06T07:08:09"),
    "uri": ("https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent", "not a uri"),
    "uuid": ("0b5b1a4e-2f1c-4a5e-9d8f-3c2b1a0f9e8d", "0b5b1a4e2f1c4a5e9d8f3c2b1a0f9e8"),
}
_FALLBACKS = {"date-time": is_rfc3339_date_time, "uri": is_uri}


def _enforces(checker: FormatChecker, fmt: str) -> bool:
    good, bad = _PROBES[fmt]
    return checker.conforms(good, fmt) and not checker.conforms(bad, fmt)


@cache
def format_checker() -> FormatChecker:
    """jsonschema's checkers, with `date-time`/`uri` replaced when they are no-ops here."""
    checker = FormatChecker()
    for fmt, func in _FALLBACKS.items():
        if not _enforces(checker, fmt):
            checker.checks(fmt)(func)
            FORMAT_IMPLEMENTATIONS[fmt] = f"{__name__}.{func.__name__}"
    for fmt in _PROBES:
        if not _enforces(checker, fmt):
            raise RuntimeError(f"format {fmt!r} is not enforced by the format checker")
    return checker


# format -> what checks it ("jsonschema" unless replaced by a fallback in format_checker()).
FORMAT_IMPLEMENTATIONS: dict[str, str] = dict.fromkeys(_PROBES, "jsonschema")


# --------------------------------------------------------------------------- schemas
def _no_network(uri: str) -> Resource:
    raise NoSuchResource(ref=uri)  # only the local spec files exist


@cache
def registry() -> Registry:
    """Every local schema under its `$id` (`https://openlineage.io/spec/...`)."""
    resources = []
    for path in [SPEC_DIR / "OpenLineage.json", *sorted((SPEC_DIR / "facets").glob("*.json"))]:
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry(retrieve=_no_network).with_resources(resources).crawl()


@cache
def schema_id(file_name: str) -> str:
    path = (
        SPEC_DIR / "OpenLineage.json"
        if file_name == "OpenLineage.json"
        else (SPEC_DIR / "facets" / file_name)
    )
    return json.loads(path.read_text())["$id"]


@cache
def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=registry(), format_checker=format_checker())


def facet_schema_ref(location: str, name: str) -> str | None:
    """`<$id>#/$defs/<Definition>` of a standard facet, or None for a custom facet name."""
    entry = FACET_SCHEMAS[location].get(name)
    return f"{schema_id(entry[0])}#/$defs/{entry[1]}" if entry else None


# --------------------------------------------------------------------------- validation
def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += (
            f"[{p}]"
            if isinstance(p, int)
            else (f".{p}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(p)) else f"[{str(p)!r}]")
        )
    return out


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The most specific errors: all errors of the best `anyOf`/`oneOf` branch, recursively."""
    if not error.context:
        yield error
        return
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    chosen = branches[best_match(error.context).relative_schema_path[0]]
    for sub in chosen:
        yield from _leaves(sub)


def _errors(ref: str, instance: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[str, str]]:
    found = []
    for error in _validator(ref).iter_errors(instance):
        for leaf in _leaves(error):
            found.append((_json_path((*prefix, *leaf.absolute_path)), leaf.message))
    return found


def _event_kind(event: dict) -> str:
    if "run" in event:
        return "RunEvent"
    return "DatasetEvent" if "dataset" in event else "JobEvent"


def _facet_maps(event: dict) -> Iterator[tuple[str, tuple[Any, ...], dict]]:
    """(location, path, facets map) of every facets map in the event."""

    def facets(obj: Any, key: str) -> dict | None:
        value = obj.get(key) if isinstance(obj, dict) else None
        return value if isinstance(value, dict) else None

    for location, owner in (("run", "run"), ("job", "job")):
        if (found := facets(event.get(owner), "facets")) is not None:
            yield location, (owner, "facets"), found
    for side, extra_key, extra_location in (
        ("inputs", "inputFacets", "inputDataset"),
        ("outputs", "outputFacets", "outputDataset"),
    ):
        datasets = event.get(side)
        for i, ds in enumerate(datasets if isinstance(datasets, list) else []):
            if (found := facets(ds, "facets")) is not None:
                yield "dataset", (side, i, "facets"), found
            if (found := facets(ds, extra_key)) is not None:
                yield extra_location, (side, i, extra_key), found
    if (found := facets(event.get("dataset"), "facets")) is not None:  # DatasetEvent
        yield "dataset", ("dataset", "facets"), found


def _schema_url_error(facet: dict, ref: str) -> str | None:
    url = facet.get("_schemaURL")
    file_id = ref.split("#", 1)[0]
    if not isinstance(url, str) or url in (ref, file_id):
        return None
    claimed = url.split("#", 1)[0].rsplit("/", 1)[-1]
    if claimed == file_id.rsplit("/", 1)[-1]:
        return (
            f"_schemaURL {url!r} claims another version of this facet than the spec snapshot "
            f"it was validated against ({ref}); refresh data/openlineage/ or fix the producer"
        )
    return f"_schemaURL {url!r} does not match the standard facet schema {ref}"


def event_errors(
    event: Any, *, strict_placement: bool = False, check_schema_urls: bool = True
) -> list[str]:
    """All problems of one event, as `<JSON path>: <reason>` lines (empty when valid).

    strict_placement: a standard facet name used in a dataset facets map where the spec does
        not define it (e.g. `dataQualityAssertions`, an InputDatasetFacet, in `outputs[].facets`)
        is an error. Otherwise it is validated against that facet's schema anyway (the JSON
        schema itself accepts any facet built on the location's base facet there).
    check_schema_urls: a standard facet's `_schemaURL` must be the schema it was validated
        against (`<$id>` or `<$id>#/$defs/<Definition>`), and the event's `schemaURL` the
        `OpenLineage.json` `$id` (with its `#/$defs/<Kind>` fragment, if any).
    """
    if not isinstance(event, dict):
        return [f"$: event must be a JSON object, not {type(event).__name__}"]
    kind = _event_kind(event)
    problems = _errors(f"{CORE_ID}#/$defs/{kind}", event)
    if not problems:  # the document root (oneOf of the three event kinds) must agree
        problems = _errors(CORE_ID, event)
    url = event.get("schemaURL")
    if (
        check_schema_urls
        and isinstance(url, str)
        and url not in (CORE_ID, f"{CORE_ID}#/$defs/{kind}")
    ):
        problems.append(("$.schemaURL", f"{url!r} is not {CORE_ID}#/$defs/{kind}"))
    for location, path, facets in _facet_maps(event):
        for name, facet in facets.items():
            facet_path = (*path, name)
            ref = facet_schema_ref(location, name)
            if ref is None and location in _DATASET_LOCATIONS:
                elsewhere = [
                    other
                    for other in _DATASET_LOCATIONS
                    if other != location and name in FACET_SCHEMAS[other]
                ]
                if elsewhere:
                    if strict_placement:
                        definition = FACET_SCHEMAS[elsewhere[0]][name][1]
                        problems.append(
                            (
                                _json_path(facet_path),
                                f"standard facet {definition} belongs in "
                                f"{_LOCATION_KEYS[elsewhere[0]]}, not {_LOCATION_KEYS[location]}",
                            )
                        )
                    ref = facet_schema_ref(elsewhere[0], name)
            if ref is None:  # custom facet: the base facet of its location
                ref = f"{CORE_ID}#/$defs/{LOCATION_BASE[location]}"
            elif (
                check_schema_urls
                and isinstance(facet, dict)
                and (message := _schema_url_error(facet, ref))
            ):
                problems.append((_json_path((*facet_path, "_schemaURL")), message))
            problems.extend(_errors(ref, facet, facet_path))
    return list(dict.fromkeys(f"{p}: {m}" for p, m in problems))  # drop duplicates


def validate_event(event: dict, **options: bool) -> None:
    """Raise AssertionError listing every problem (`<JSON path>: <reason>`) of an event."""
    problems = event_errors(event, **options)
    if problems:
        event = event if isinstance(event, dict) else {}
        what = f"{event.get('eventType', '?')} event"
        run = event.get("run")
        run_id = run.get("runId") if isinstance(run, dict) else None
        header = f"OpenLineage {what}" + (f" (runId {run_id})" if run_id else "")
        raise AssertionError(f"{header} violates the OpenLineage spec:\n  " + "\n  ".join(problems))


def validate_file(path: str | Path, **options: bool) -> int:
    """Validate a JSON-lines file of events; return how many events it holds.

    Raises AssertionError naming the line of every invalid event (blank lines are skipped).
    """
    failures, count = [], 0
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        count += 1
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            failures.append(f"line {number}: not JSON ({exc})")
            continue
        for problem in event_errors(event, **options):
            failures.append(f"line {number}: {problem}")
    if failures:
        raise AssertionError(f"{path}: invalid OpenLineage events:\n  " + "\n  ".join(failures))
    return count
