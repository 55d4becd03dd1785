"""OpenLineage runs of an asset step, one per asset (job = the asset key): START when the step
starts, COMPLETE as soon as the step yields the asset's version, FAIL for every asset it did not
materialize when it ends; then a `<asset>.checks` run whose input carries the gate results
(data-quality assertions are input facets in the spec)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
from openlineage.client.event_v2 import InputDataset, RunState
from openlineage.client.facet_v2 import parent_run

from elt_platform.orchestration.lineage_datasets import (
    DatasetName,
    model_column_lineage,
    source_column_lineage,
    source_input,
    version_dataset,
    version_input,
    version_output,
)
from elt_platform.orchestration.openlineage import JOB_NAMESPACE, Emitter, lineage_job
from elt_platform.orchestration.partitions import step_partition
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.project.lineage import LineageGraph, load_lineage


@dataclass(frozen=True)
class SourceInputs:
    """What a raw asset reads: its source datasets, the key its rows are merged on, its owner."""

    datasets: tuple[DatasetName, ...]
    key: tuple[str, ...] = ()
    owner: str | None = None


class StepLineage:
    """The OpenLineage runs of one step: one per asset it materializes (job = the asset key)."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        sources: Callable[[], SourceInputs] | None = None,
    ) -> None:
        self.context = context
        self.resource = warehouse
        self.emitter = Emitter(context, warehouse.settings)
        self.environment = step_partition(context)
        self.assets = sorted(k.to_user_string() for k in context.selected_asset_keys)
        self.source_factory = sources
        self.sources: SourceInputs | None = None
        self.done: dict[str, str] = {}  # asset -> the version it completed with
        self.checks: dict[str, dict[str, bool]] = {}
        self.graph: LineageGraph | None = None
        self.graph_loaded = False

    def run_id(self, asset: str, suffix: str = "") -> str:
        """Stable per (Dagster run, asset, attempt): a retried step is a new OpenLineage run."""
        attempt = self.context.retry_number
        label = asset + (f"#attempt{attempt}" if attempt else "") + suffix
        return str(uuid.uuid5(uuid.UUID(self.context.run_id), label))

    def facets(self, asset: str) -> dict[str, Any]:
        facets = self.emitter.run_facets(
            self.environment,
            environment=self.environment or "",
            dagster_job=self.context.job_name,
            step=self.context.op_handle.name,
        )
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=self.context.run_id),
            job=parent_run.Job(namespace=JOB_NAMESPACE, name=self.context.job_name),
        )
        return facets

    def start(self) -> None:
        if self.source_factory is not None:
            self.emitter.guard("name the source datasets", self._load_sources)
        for asset in self.assets:
            self.emitter.guard(f"emit START for {asset}", lambda a=asset: self._start(a))

    def _load_sources(self) -> None:
        self.sources = self.source_factory()

    def _start(self, asset: str) -> None:
        self.emitter.event(
            RunState.START,
            self.run_id(asset),
            lineage_job(asset, "ASSET"),
            self.facets(asset),
            inputs=self.emitter.guard("name the known inputs", lambda: self._known_inputs(asset)),
        )

    def _known_inputs(self, asset: str) -> list[InputDataset]:
        """Sources, and the versions of upstream assets this step does not rebuild."""
        if self.sources is not None:
            return [source_input(d) for d in self.sources.datasets]
        deps = self.context.assets_def.asset_deps.get(dg.AssetKey.from_user_string(asset), set())
        pointers = self.resource.warehouse.environments.pointers(self.environment or "")
        versions = self.resource.warehouse.versions
        return [
            version_input(versions.get(d, pointers[d]), self.environment)
            for d in sorted(k.to_user_string() for k in deps)
            if d in pointers and d not in self.assets
        ]

    def observe(self, event: object) -> None:
        """Note what a step yields: a materialized version is COMPLETE at once; check results
        are kept for the checks run."""
        self.emitter.guard("record a step event", lambda: self._observe(event))

    def _observe(self, event: object) -> None:
        if isinstance(event, dg.Output | dg.MaterializeResult):
            asset = self._asset_of(event)
            version_id = event.metadata.get("version_id") if event.metadata else None
            version_id = getattr(version_id, "value", version_id)
            for check in getattr(event, "check_results", None) or []:
                self._observe(check)
            if version_id and asset and asset not in self.done:
                self.done[asset] = str(version_id)
                self._complete(asset, str(version_id))
        elif isinstance(event, dg.AssetCheckResult):
            asset = event.asset_key.to_user_string() if event.asset_key else self.assets[0]
            self.checks.setdefault(asset, {})[event.check_name or "check"] = event.passed

    def _asset_of(self, event: dg.Output | dg.MaterializeResult) -> str | None:
        if isinstance(event, dg.Output):
            return self.context.asset_key_for_output(event.output_name).to_user_string()
        if event.asset_key is not None:
            return dg.AssetKey.from_coercible(event.asset_key).to_user_string()
        return self.assets[0] if len(self.assets) == 1 else None

    def _complete(self, asset: str, version_id: str) -> None:
        wh = self.resource.warehouse
        version = wh.versions.get(asset, version_id)
        columns = [c for c, _ in version.schema]
        if self.sources is not None:
            inputs = [source_input(d) for d in self.sources.datasets]
            lineage = source_column_lineage(columns, self.sources.datasets, self.sources.key)
            owner = self.sources.owner
        else:
            recorded = wh.versions.record(asset, version_id)["inputs"]
            read = {up: wh.versions.get(up, vid) for up, vid in sorted(recorded.items())}
            inputs = [version_input(v, self.environment) for v in read.values()]
            graph = self._graph()
            lineage, owner = None, None
            if graph is not None and asset in graph.assets:
                names = {up: version_dataset(v) for up, v in read.items()}
                lineage = self.emitter.guard(
                    f"trace the columns of {asset}",
                    lambda: model_column_lineage(graph, asset, columns, names),
                )
                owner = graph.assets[asset].owner
        output = version_output(
            version,
            self.environment or "",
            wh.catalogs.path(self.environment or ""),
            column_lineage=lineage,
            owner=owner,
        )
        self.emitter.event(
            RunState.COMPLETE,
            self.run_id(asset),
            lineage_job(asset, "ASSET"),
            self.facets(asset),
            inputs=inputs,
            outputs=[output],
        )

    def lineage_graph(self) -> LineageGraph | None:
        """The project's lineage graph, loaded once per step (None if it cannot be read)."""
        return self._graph()

    def _graph(self) -> LineageGraph | None:
        """Column lineage of the project, loaded once per step (a broken project has none)."""
        if not self.graph_loaded:
            self.graph_loaded = True
            try:
                self.graph = load_lineage(self.resource.settings)
            except Exception as exc:  # noqa: BLE001 - table-level events still go out
                self.context.log.warning(f"OpenLineage: no column lineage: {exc}")
        return self.graph

    def finish(self, error: BaseException | None) -> None:
        """FAIL every asset the step did not materialize; then one checks run per checked asset."""
        for asset in self.assets:
            if asset not in self.done:
                self.emitter.guard(
                    f"emit FAIL for {asset}",
                    lambda a=asset: self._fail(a, error),
                )
        for asset in sorted(self.checks):
            if asset in self.done:
                self.emitter.guard(f"emit checks of {asset}", lambda a=asset: self._checks(a))

    def _fail(self, asset: str, error: BaseException | None) -> None:
        job = lineage_job(asset, "ASSET")
        self.emitter.event(RunState.FAIL, self.run_id(asset), job, self.facets(asset), error=error)

    def _checks(self, asset: str) -> None:
        """A run of the gates: its input is the checked version, with its assertions."""
        version = self.resource.warehouse.versions.get(asset, self.done[asset])
        run_id = self.run_id(asset, "#checks")
        facets = {
            **self.emitter.run_facets(self.environment, environment=self.environment or ""),
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self.run_id(asset)),
                job=parent_run.Job(namespace=JOB_NAMESPACE, name=asset),
            ),
        }
        checked = [version_input(version, self.environment, self.checks[asset])]
        job = lineage_job(f"{asset}.checks", "CHECK")
        self.emitter.event(RunState.START, run_id, job, facets, inputs=checked)
        self.emitter.event(RunState.COMPLETE, run_id, job, facets, inputs=checked)


@contextmanager
def step_lineage(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    sources: Callable[[], SourceInputs] | None = None,
) -> Iterator[StepLineage]:
    """START now; COMPLETE as versions are observed; FAIL for the rest when the step ends."""
    lineage = StepLineage(context, warehouse, sources)
    lineage.start()
    try:
        yield lineage
    except BaseException as exc:
        lineage.finish(exc)
        raise
    lineage.finish(None)
