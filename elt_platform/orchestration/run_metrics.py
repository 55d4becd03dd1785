"""Observability numbers on each materialization, which Dagster plots over time per partition:
throughput (rows per second of the step's own duration), the asset's recent failure rate in
this environment, and freshness against the SLA its contract declares (`freshness.max_lag`):
how long the partition had gone without an update, and whether that was within the SLA.

Like the column facts, these never fail a step: without history the numbers are left out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import dagster as dg

from elt_platform.durations import parse_period
from elt_platform.orchestration.partitions import PARTITION_TAG, step_partition
from elt_platform.project.contracts.model import Contract

RECENT_RUNS = 20
_FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)


class RunMetrics:
    """Adds throughput, failure rate and freshness to the materializations of one step."""

    def __init__(self, context: dg.AssetExecutionContext) -> None:
        self.context = context
        self.environment = step_partition(context)
        self._runs: list[dg.DagsterRun] | None = None

    def _recent_runs(self) -> list[dg.DagsterRun]:
        if self._runs is None:
            records = self.context.instance.get_run_records(
                filters=dg.RunsFilter(
                    tags={PARTITION_TAG: self.environment or ""}, statuses=list(_FINISHED)
                ),
                limit=RECENT_RUNS * 5,
            )
            self._runs = [r.dagster_run for r in records]
        return self._runs

    def failure_rate(self, asset: str) -> float | None:
        """Share of the last finished runs of this environment that planned `asset` and failed
        (this run counted as a success: it is materializing the asset)."""
        key = dg.AssetKey.from_user_string(asset)
        planned = [
            r
            for r in self._recent_runs()
            if r.run_id != self.context.run_id
            and (r.asset_selection is None or key in r.asset_selection)
        ][: RECENT_RUNS - 1]
        failed = sum(1 for r in planned if r.status == dg.DagsterRunStatus.FAILURE)
        return round(failed / (len(planned) + 1), 3)

    def freshness(self, asset: str, contract: Contract | None) -> dict[str, object]:
        """Hours since this partition's previous materialization of `asset`, and the SLA."""
        out: dict[str, object] = {}
        records = self.context.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey.from_user_string(asset),
                asset_partitions=[self.environment or ""],
            ),
            limit=1,
        ).records
        if records:
            lag = (time.time() - records[0].timestamp) / 3600
            out["freshness_lag_hours"] = dg.MetadataValue.float(round(lag, 3))
        if contract is not None and contract.freshness is not None:
            sla = parse_period(contract.freshness.max_lag).total_seconds() / 3600
            out["freshness_sla_hours"] = dg.MetadataValue.float(round(sla, 3))
            if records:
                met = out["freshness_lag_hours"].value <= sla
                out["freshness_sla_met"] = dg.MetadataValue.int(int(met))
        return out

    def metadata(self, asset: str, contract: Contract | None, metadata: Mapping) -> dict:
        out = dict(metadata)
        rows = _number(metadata.get("dagster/row_count"))
        seconds = _number(metadata.get("duration_seconds") or metadata.get("Execution Duration"))
        if "rows_per_second" not in metadata and rows is not None and seconds:
            out["rows_per_second"] = dg.MetadataValue.float(round(rows / seconds, 1))
        if self.environment:
            rate = self.failure_rate(asset)
            if rate is not None:
                out["failure_rate_recent"] = dg.MetadataValue.float(rate)
            out.update(self.freshness(asset, contract))
        return out

    def annotate(self, event: object, asset: str, contract: Contract | None) -> object:
        """The same Output or MaterializeResult with these numbers added (unchanged on error)."""
        try:
            if isinstance(event, dg.Output) and event.metadata:
                return event.with_metadata(self.metadata(asset, contract, event.metadata))
            if isinstance(event, dg.MaterializeResult) and event.metadata:
                return event._replace(metadata=self.metadata(asset, contract, event.metadata))
        except Exception as exc:  # noqa: BLE001 - observability must never fail a step
            self.context.log.warning(f"could not compute run metrics for {asset}: {exc}")
        return event


def _number(value: object) -> float | None:
    value = getattr(value, "value", value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
