"""What the dashboard plots, read from where it is recorded: per environment and asset, each
computed materialization's rows, bytes, duration, throughput and quality score (Dagster's event
log), the share of runs that failed, freshness against the SLA each asset declares
(`freshness.max_lag` in its dbt meta) with its history, and alert volume per rule (sent vs
suppressed repeats, for the alert fatigue review)."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from elt_platform.durations import parse_period
from elt_platform.project.contracts.model import Contract
from elt_platform.settings import Settings

RUN_LIMIT = 500
EVENTS_PER_ASSET = 200
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}


@dataclass(frozen=True)
class Point:
    """One computed materialization (reused versions took no time and are not plotted)."""

    asset: str
    environment: str
    at: str
    run_id: str
    rows: int | None
    bytes: int | None
    seconds: float | None
    rows_per_second: float | None
    quality_score: float | None


@dataclass(frozen=True)
class FailureRate:
    asset: str
    environment: str
    runs: int
    failed: int

    @property
    def rate(self) -> float:
        return self.failed / self.runs if self.runs else 0.0


@dataclass
class Sla:
    """Freshness of one asset in one environment against its declared maximum lag."""

    asset: str
    environment: str
    max_lag: str
    last_update: str | None
    met_now: bool
    history: list[tuple[str, bool]] = field(default_factory=list)  # (update, gap within lag)


@dataclass(frozen=True)
class AlertVolume:
    dataset: str
    kind: str
    sent: int
    suppressed: int
    last_at: str | None


@dataclass
class Observability:
    points: list[Point]
    failures: list[FailureRate]
    slas: list[Sla]
    alerts: list[AlertVolume]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _number(metadata: dict, *keys: str) -> float | None:
    for key in keys:
        entry = metadata.get(key)
        value = getattr(entry, "value", entry)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def materialization_points(instance: dg.DagsterInstance, assets: list[str]) -> list[Point]:
    """Computed materializations of `assets`, oldest first."""
    out: list[Point] = []
    for asset in assets:
        records = instance.fetch_materializations(
            dg.AssetKey.from_user_string(asset), limit=EVENTS_PER_ASSET
        ).records
        for record in records:
            mat = record.asset_materialization
            md = dict(mat.metadata) if mat else {}
            rebuilt = getattr(md.get("rebuilt"), "value", True)
            if mat is None or not mat.partition or rebuilt is False or "release" in md:
                continue  # reused, or a prod pointer move (its numbers are the staging run's)
            rows = _number(md, "dagster/row_count", "rows")
            seconds = _number(md, "duration_seconds", "Execution Duration", "dbt_build_seconds")
            speed = _number(md, "rows_per_second")
            if speed is None and rows is not None and seconds:
                speed = round(rows / seconds, 1)
            nbytes = _number(md, "bytes")
            out.append(
                Point(
                    asset,
                    mat.partition,
                    _iso(record.timestamp),
                    record.run_id,
                    int(rows) if rows is not None else None,
                    int(nbytes) if nbytes is not None else None,
                    seconds,
                    speed,
                    _number(md, "quality_score"),
                )
            )
    return sorted(out, key=lambda p: p.at)


def failure_rates(instance: dg.DagsterInstance, assets: list[str]) -> list[FailureRate]:
    """Per asset and environment: finished runs that planned the asset, and how many failed."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for record in instance.get_run_records(limit=RUN_LIMIT):
        run = record.dagster_run
        environment = run.tags.get("dagster/partition")
        if not environment or run.status not in FINISHED:
            continue
        planned = (
            [k.to_user_string() for k in run.asset_selection] if run.asset_selection else assets
        )
        for asset in planned:
            entry = counts[(asset, environment)]
            entry[0] += 1
            entry[1] += run.status == dg.DagsterRunStatus.FAILURE
    return [FailureRate(a, e, n, f) for (a, e), (n, f) in sorted(counts.items())]


def freshness_slas(
    points: list[Point],
    prod_updates: dict[str, list[str]],
    contracts: dict[str, Contract],
    now: datetime | None = None,
) -> list[Sla]:
    """Each declared SLA per environment: met now, and for every update whether it came within
    `max_lag` of the previous one (prod updates are promotions, elsewhere builds)."""
    now = now or datetime.now(UTC)
    updates: dict[tuple[str, str], list[str]] = defaultdict(list)
    for point in points:
        updates[(point.asset, point.environment)].append(point.at)
    for asset, times in prod_updates.items():
        updates[(asset, "prod")].extend(times)
    out = []
    for asset, contract in sorted(contracts.items()):
        if contract.freshness is None:
            continue
        lag = parse_period(contract.freshness.max_lag)
        environments = sorted({e for a, e in updates if a == asset} | {"prod"})
        for environment in environments:
            times = sorted(updates.get((asset, environment), []))
            history = [
                (t, datetime.fromisoformat(t) - datetime.fromisoformat(prev) <= lag)
                for prev, t in zip(times, times[1:], strict=False)
            ]
            last = times[-1] if times else None
            met = last is not None and now - datetime.fromisoformat(last) <= lag
            out.append(Sla(asset, environment, contract.freshness.max_lag, last, met, history))
    return out


def prod_updates(instance: dg.DagsterInstance, assets: list[str]) -> dict[str, list[str]]:
    """When prod's version of each asset changed (promotion and rollback materializations)."""
    out: dict[str, list[str]] = {}
    for asset in assets:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey.from_user_string(asset), asset_partitions=["prod"]
            ),
            limit=EVENTS_PER_ASSET,
        ).records
        out[asset] = sorted(_iso(r.timestamp) for r in records)
    return out


def alert_volumes(metadata_path: Path) -> list[AlertVolume]:
    """Alerts per rule (dataset and kind): how many were sent and how many repeats of an
    already reported condition were suppressed."""
    if not metadata_path.exists():
        return []
    con = sqlite3.connect(f"file:{metadata_path}?mode=ro", uri=True, timeout=30)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "alert_fingerprints" not in tables:
            return []
        repeats = (
            "(SELECT coalesce(sum(repeats), 0) FROM alert_repeats r WHERE r.fingerprint IN"
            " (SELECT fingerprint FROM alert_fingerprints g WHERE g.dataset = f.dataset"
            " AND g.kind = f.kind))"
            if "alert_repeats" in tables
            else "0"
        )
        rows = con.execute(
            f"SELECT f.dataset, f.kind, count(*), {repeats}, max(f.first_sent_at)"
            " FROM alert_fingerprints f GROUP BY f.dataset, f.kind ORDER BY f.dataset, f.kind"
        ).fetchall()
    finally:
        con.close()
    return [AlertVolume(d, k, int(s), int(r), at) for d, k, s, r, at in rows]


def collect(
    settings: Settings,
    instance: dg.DagsterInstance,
    assets: list[str],
    contracts: dict[str, Contract],
    now: datetime | None = None,
) -> Observability:
    points = materialization_points(instance, assets)
    slas = freshness_slas(points, prod_updates(instance, assets), contracts, now)
    return Observability(
        points, failure_rates(instance, assets), slas, alert_volumes(settings.metadata_path)
    )
