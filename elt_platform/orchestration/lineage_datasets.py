"""OpenLineage datasets: names for the platform's physical storage and its sources, and the facets
that describe them. The one place that decides how the platform names a dataset.

Names follow the spec's naming conventions (namespace = the physical datasource, name = a path or
`db.schema.table`; `elt_platform_tests/data/openlineage/naming-conventions.md`):
- a version is a folder of Parquet files: namespace `file`, name = the folder's absolute path;
  the environment's catalog view over it is a `symlinks` identifier (`duckdb://<catalog path>`,
  `<catalog>.<schema>.<view>`: DuckDB names an attached file's database after its stem);
- a prod dataset is the view in the prod catalog, versioned by the release id;
- source files: `file` + absolute path; a SQL table: the convention of its backend (postgres://,
  mysql://, ...; SQLite, absent from the conventions, is `sqlite://<absolute file path>` with
  name `main.<table>`); an HTTP endpoint, also absent: `http(s)://host:port` + the URL path.
The logical environment, the asset key and the release are `tags` facets, never part of a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    dataset_version_dataset,
    output_statistics_output_dataset,
    ownership_dataset,
    schema_dataset,
    storage_dataset,
    symlinks_dataset,
    tags_dataset,
)

from elt_platform.orchestration.dataset_names import (
    DatasetName,
    catalog_view,
    version_dataset,
)
from elt_platform.project.column_lineage import DATASET_KINDS, INDIRECT_KINDS, ROWS, ColumnRef
from elt_platform.project.lineage import LineageGraph
from elt_platform.store.versions import Version

TAG_SOURCE = "ELT_PLATFORM"
# OpenLineage transformation subtypes of the lineage graph's edge kinds.
_DIRECT = {
    "identity": "IDENTITY",
    "rename": "IDENTITY",
    "transformation": "TRANSFORMATION",
    "aggregation": "AGGREGATION",
}
_INDIRECT = {kind: kind.upper() for kind in (*INDIRECT_KINDS, *DATASET_KINDS)}


def tags_facet(**tags: str | None) -> tags_dataset.TagsDatasetFacet:
    return tags_dataset.TagsDatasetFacet(
        tags=[
            tags_dataset.TagsDatasetFacetFields(key=k, value=v, source=TAG_SOURCE)
            for k, v in tags.items()
            if v
        ]
    )


def schema_facet(columns: Iterable[tuple[str, str]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in columns]
    )


def version_facet(version: str) -> dataset_version_dataset.DatasetVersionDatasetFacet:
    return dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)


def version_input(
    version: Version, environment: str | None = None, checks: Mapping[str, bool] | None = None
) -> InputDataset:
    """A version read by a step (with the gate results it carried, when given)."""
    name = version_dataset(version)
    input_facets: dict[str, Any] = {}
    if checks:
        quality = data_quality_assertions_dataset
        input_facets["dataQualityAssertions"] = quality.DataQualityAssertionsDatasetFacet(
            assertions=[
                quality.Assertion(assertion=check, success=bool(ok), name=check)
                for check, ok in sorted(checks.items())
            ]
        )
    return InputDataset(
        namespace=name.namespace,
        name=name.name,
        facets={
            "version": version_facet(version.version_id),
            "tags": tags_facet(asset=version.asset, environment=environment),
        },
        inputFacets=input_facets or None,
    )


def source_input(name: DatasetName) -> InputDataset:
    return InputDataset(namespace=name.namespace, name=name.name)


def version_output(
    version: Version,
    environment: str,
    catalog_path: Path,
    *,
    column_lineage: column_lineage_dataset.ColumnLineageDatasetFacet | None,
    owner: str | None = None,
) -> OutputDataset:
    """A version a step wrote, known also as its environment's catalog view."""
    name = version_dataset(version)
    view = catalog_view(catalog_path, version.asset)
    facets: dict[str, Any] = {
        "schema": schema_facet(version.schema),
        "version": version_facet(version.version_id),
        "storage": storage_dataset.StorageDatasetFacet(
            storageLayer="parquet", fileFormat="parquet"
        ),
        "symlinks": symlinks_dataset.SymlinksDatasetFacet(
            identifiers=[symlinks_dataset.Identifier(view.namespace, view.name, "VIEW")]
        ),
        "tags": tags_facet(asset=version.asset, environment=environment),
    }
    if column_lineage is not None:
        facets["columnLineage"] = column_lineage
    if owner:
        facets["ownership"] = ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=owner, type="OWNER")]
        )
    return OutputDataset(
        namespace=name.namespace, name=name.name, facets=facets, outputFacets=_stats(version)
    )


def release_output(version: Version, release_id: str, catalog_path: Path) -> OutputDataset:
    """A prod view after a publish or rollback: versioned by the release, read from `version`."""
    view = catalog_view(catalog_path, version.asset)
    source = version_dataset(version)
    identity = [_field(source, c, "DIRECT", "IDENTITY", None) for c, _ in version.schema]
    return OutputDataset(
        namespace=view.namespace,
        name=view.name,
        facets={
            "schema": schema_facet(version.schema),
            "version": version_facet(release_id),
            "tags": tags_facet(
                asset=version.asset,
                environment="prod",
                release=release_id,
                content_version=version.version_id,
            ),
            "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                fields={f.field: column_lineage_dataset.Fields(inputFields=[f]) for f in identity}
            ),
        },
    )


def _stats(version: Version) -> dict[str, Any]:
    stats = output_statistics_output_dataset
    return {
        "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(
            rowCount=version.rows, size=version.bytes
        )
    }


def _field(
    source: DatasetName, field: str, type_: str, subtype: str, description: str | None
) -> column_lineage_dataset.InputField:
    return column_lineage_dataset.InputField(
        namespace=source.namespace,
        name=source.name,
        field=field,
        transformations=[
            column_lineage_dataset.Transformation(
                type=type_, subtype=subtype, description=description, masking=False
            )
        ],
    )


def model_column_lineage(
    graph: LineageGraph, asset: str, columns: Sequence[str], inputs: Mapping[str, DatasetName]
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Per-column lineage of a model (DIRECT values, INDIRECT conditions/windows, and `count(*)`
    as INDIRECT/AGGREGATION on the key of the counted input) and the dataset-level INDIRECT
    inputs (joins, filters, groupings, sorts). `inputs` names the versions that were read."""
    fields: dict[str, list[column_lineage_dataset.InputField]] = {}
    for column in columns:
        for edge in graph.upstream_edges(ColumnRef(asset, column)):
            source = inputs.get(edge.source.asset)
            if source is None:
                continue
            if edge.source.column == ROWS:
                read = graph.assets.get(edge.source.asset)
                keys = (read.primary_key or tuple(read.columns)) if read else ()
                why = f"count of the rows of {edge.source.asset}: {edge.transformation}"
                fields.setdefault(column, []).extend(
                    _field(source, key, "INDIRECT", "AGGREGATION", why) for key in keys
                )
            elif edge.kind in _DIRECT:
                fields.setdefault(column, []).append(
                    _field(
                        source,
                        edge.source.column,
                        "DIRECT",
                        _DIRECT[edge.kind],
                        edge.transformation,
                    )
                )
            else:
                fields.setdefault(column, []).append(
                    _field(
                        source,
                        edge.source.column,
                        "INDIRECT",
                        _INDIRECT[edge.kind],
                        edge.transformation,
                    )
                )
    dataset = [
        _field(
            inputs[e.source.asset], e.source.column, "INDIRECT", _INDIRECT[e.kind], e.transformation
        )
        for e in graph.row_edges(asset)
        if e.source.asset in inputs
    ]
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={c: column_lineage_dataset.Fields(inputFields=f) for c, f in fields.items()},
        dataset=dataset,
    )


def source_column_lineage(
    columns: Sequence[str], sources: Sequence[DatasetName], key: Sequence[str]
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """A raw table: each column is the source field of the same name (IDENTITY), and rows are
    merged on the primary key, the newest winning (dataset-level INDIRECT/GROUP_BY)."""
    merge = f"merged on ({', '.join(key)}): the newest row per key wins"
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            c: column_lineage_dataset.Fields(
                inputFields=[_field(s, c, "DIRECT", "IDENTITY", None) for s in sources]
            )
            for c in columns
        },
        dataset=[_field(s, k, "INDIRECT", "GROUP_BY", merge) for s in sources for k in key],
    )
