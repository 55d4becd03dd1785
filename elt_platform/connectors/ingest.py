"""Contracts at ingestion: detect drift against the contract, apply its policy, and under
`quarantine` load the conforming rows while diverting the rest (with reason and position) to a
versioned `quarantine/<source>` table of the same environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from elt_platform.connectors.alerts import Alert, default_router
from elt_platform.connectors.base import PART_COPY_OPTIONS, SourcePart
from elt_platform.connectors.drift import DriftDecision, DriftReport, decide, detect_drift
from elt_platform.connectors.quarantine import SplitCounts, split_rows
from elt_platform.errors import SourceDataError
from elt_platform.project.contracts.model import Contract, DriftPolicy
from elt_platform.sqlident import sql_literal
from elt_platform.store.versions import Version
from elt_platform.store.warehouse import Warehouse

QUARANTINE_COLUMNS = "reason, source_position, row_json"


def quarantine_asset(source: str) -> str:
    return f"quarantine/{source}"


@dataclass(frozen=True)
class IngestOutcome:
    parts: list[SourcePart]
    drift: DriftReport
    decision: DriftDecision
    split: SplitCounts | None = None
    quarantine: Version | None = None


def _scan(parts: list[SourcePart]) -> str:
    listing = ", ".join(sql_literal(str(p.path)) for p in parts)
    return f"read_parquet([{listing}], union_by_name = true, filename = true)"


def apply_contract(
    con: duckdb.DuckDBPyConnection,
    wh: Warehouse,
    source: str,
    contract: Contract,
    parts: list[SourcePart],
    *,
    environment: str,
    run_id: str,
    work_dir: Path,
) -> IngestOutcome:
    """Judge a batch against its contract; may raise (freeze) or split it (quarantine)."""
    if not parts:
        return IngestOutcome(parts, DriftReport(contract.dataset), DriftDecision("accept", ""))
    seen = {
        r[0]: r[1]
        for r in con.execute(f"DESCRIBE SELECT * EXCLUDE (filename) FROM {_scan(parts)}").fetchall()
    }
    drift = detect_drift(contract, seen)
    decision = decide(contract.drift_policy, drift)
    router = default_router(wh.meta, wh.root)
    if drift.drifted:
        router.emit(
            _alert(
                contract,
                environment,
                "drift",
                decision.reason,
                {"drift": drift.fingerprint(), "action": decision.action},
            )
        )
    if decision.action == "fail":
        raise SourceDataError(
            f"source {source!r}: {decision.reason}",
            hint=f"update contracts for {contract.dataset} (drift_policy "
            f"{contract.drift_policy.value}) or fix the source",
        )
    if contract.drift_policy is not DriftPolicy.QUARANTINE:
        return IngestOutcome(parts, drift, decision)
    labels = " ".join(f"WHEN {sql_literal(str(p.path))} THEN {sql_literal(p.label)}" for p in parts)
    counts = split_rows(
        con,
        f"SELECT * EXCLUDE (filename), CASE filename {labels} END AS _elt_part FROM {_scan(parts)}",
        contract,
        position_sql="_elt_part || ':' || (row_number() OVER (PARTITION BY _elt_part))",
    )
    valid = work_dir / "validated.parquet"
    con.execute(f"COPY _elt_valid TO {sql_literal(str(valid))} ({PART_COPY_OPTIONS})")
    quarantine = None
    if counts.quarantined:
        quarantine = append_quarantine(con, wh, source, environment, run_id, "_elt_rejected")
        message = f"{counts.quarantined} of {counts.read} rows quarantined"
        details = {"reasons": sorted(counts.reasons), "counts": counts.reasons}
        router.emit(_alert(contract, environment, "quarantine", message, details))
    return IngestOutcome([SourcePart(valid, "validated rows")], drift, decision, counts, quarantine)


def append_quarantine(
    con: duckdb.DuckDBPyConnection,
    wh: Warehouse,
    source: str,
    environment: str,
    run_id: str,
    rejected_table: str,
) -> Version:
    """New version of the environment's quarantine table: previous rows plus the rejected ones,
    without duplicates, so re-reading the same bad rows does not grow it."""
    asset = quarantine_asset(source)
    previous = wh.environments.pointers(environment).get(asset)
    union = f"SELECT {QUARANTINE_COLUMNS} FROM {rejected_table}"
    if previous:
        kept = wh.versions.get(asset, previous).scan_sql
        union += f" UNION ALL SELECT {QUARANTINE_COLUMNS} FROM {kept}"
    return wh.versions.write_query(
        con,
        asset,
        f"SELECT DISTINCT * FROM ({union}) ORDER BY ALL",
        environment=environment,
        run_id=run_id,
        params={"source": source},
    )


def _alert(contract: Contract, environment: str, kind: str, message: str, details: dict) -> Alert:
    return Alert(contract.dataset, contract.owner, kind, environment, message, details)
