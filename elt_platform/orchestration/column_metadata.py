"""Column facts on each materialization, for the UI's Columns table: every column of
`dagster/column_schema` is tagged with its declared sensitivity (`access/sensitivity.py`), how
sandboxes mask it, whether this version's values are masked and whether it is derived from PII;
`dagster/column_lineage` lists the upstream columns each value is computed from
(`project/lineage.py`, direct edges only: conditions and filters are not values).

Annotation never fails a step: without a readable project the metadata stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from elt_platform.access.masking_policy import KEEP
from elt_platform.access.sensitivity import SensitivityMap, declared_sensitivity, masking_rules
from elt_platform.environments import EnvironmentKind, kind_of
from elt_platform.project.column_lineage import ROWS, ColumnRef
from elt_platform.project.lineage import PII, LineageGraph
from elt_platform.settings import Settings

COLUMN_SCHEMA = "dagster/column_schema"
COLUMN_LINEAGE = "dagster/column_lineage"
DIRECT_KINDS = ("identity", "rename", "transformation", "aggregation")
UNCLASSIFIED = "unclassified"


class ColumnAnnotator:
    """Adds column tags and column lineage to the materializations of one step."""

    def __init__(
        self, settings: Settings, graph: Callable[[], LineageGraph | None], log: Any = None
    ) -> None:
        self.settings = settings
        self.graph_source = graph
        self.log = log
        self._levels: SensitivityMap | None = None
        self._rules: dict[str, dict[str, str]] | None = None
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            self._levels = declared_sensitivity(self.settings)
            self._rules = masking_rules(self.settings) or {}

    def tags(self, asset: str, column: str, environment: str) -> dict[str, str]:
        self._load()
        level = (self._levels.level(asset, column) if self._levels else None) or UNCLASSIFIED
        rule = (self._rules or {}).get(asset, {}).get(column)
        tags = {"sensitivity": level}
        if level == PII:
            tags["masking"] = rule or "auto"
        # Sandboxes mask every PII column and every column nobody classified (no rule).
        if kind_of(environment) is EnvironmentKind.SANDBOX and rule != KEEP:
            tags["masked"] = "in this sandbox"
        graph = self.graph_source()
        if graph is not None and level != PII:
            ref = ColumnRef(asset, column)
            if graph.effective_sensitivity(ref) == PII:
                tags["derived_from"] = "pii"
        return tags

    def lineage(self, asset: str) -> dg.TableColumnLineage | None:
        graph = self.graph_source()
        if graph is None or asset not in graph.assets:
            return None
        deps: dict[str, list[dg.TableColumnDep]] = {}
        for column in graph.assets[asset].columns:
            for edge in graph.upstream_edges(ColumnRef(asset, column)):
                if edge.kind in DIRECT_KINDS and edge.source.column != ROWS:
                    deps.setdefault(column, []).append(
                        dg.TableColumnDep(
                            asset_key=dg.AssetKey.from_user_string(edge.source.asset),
                            column_name=edge.source.column,
                        )
                    )
        return dg.TableColumnLineage(deps_by_column=deps) if deps else None

    def metadata(self, asset: str, environment: str, metadata: dict) -> dict:
        """`metadata` with tagged columns and column lineage (unchanged if that fails)."""
        try:
            return self._metadata(asset, environment, metadata)
        except Exception as exc:  # noqa: BLE001 - column facts must never fail a step
            if self.log is not None:
                self.log.warning(f"could not annotate the columns of {asset}: {exc}")
            return metadata

    def _metadata(self, asset: str, environment: str, metadata: dict) -> dict:
        schema = metadata.get(COLUMN_SCHEMA)
        schema = getattr(schema, "value", schema)
        if not isinstance(schema, dg.TableSchema):
            return metadata
        columns = [
            dg.TableColumn(
                name=c.name,
                type=c.type,
                description=c.description,
                constraints=c.constraints,
                tags={**(c.tags or {}), **self.tags(asset, c.name, environment)},
            )
            for c in schema.columns
        ]
        out = {**metadata, COLUMN_SCHEMA: dg.TableSchema(columns=columns)}
        lineage = self.lineage(asset)
        if lineage is not None:
            out[COLUMN_LINEAGE] = lineage
        return out

    def annotate(self, event: object, asset: str, environment: str) -> object:
        """The same Output or MaterializeResult with annotated metadata."""
        if isinstance(event, dg.Output) and event.metadata:
            return event.with_metadata(self.metadata(asset, environment, dict(event.metadata)))
        if isinstance(event, dg.MaterializeResult) and event.metadata:
            return event._replace(metadata=self.metadata(asset, environment, dict(event.metadata)))
        return event
