"""Replay quarantined rows after an owner fixed the contract (or the data): rows that now conform
are merged into the raw table, the rest stay quarantined; both pointers move together."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import duckdb

from elt_platform.connectors.base import PART_COPY_OPTIONS, SourcePart
from elt_platform.connectors.ingest import QUARANTINE_COLUMNS, quarantine_asset
from elt_platform.connectors.merge import merge_batch
from elt_platform.connectors.quarantine import split_rows
from elt_platform.connectors.state import ConnectorStateStore
from elt_platform.project.contracts.model import Contract
from elt_platform.project.sources import SourceConfig
from elt_platform.sqlident import sql_literal
from elt_platform.store.warehouse import Warehouse


@dataclass(frozen=True)
class ReplayResult:
    replayed: int
    loaded: int
    still_quarantined: int
    reasons: dict[str, int]


def quarantined(wh: Warehouse, source: str, environment: str) -> str | None:
    """SQL scan of the environment's quarantine table for `source` (None if it has none)."""
    vid = wh.environments.pointers(environment).get(quarantine_asset(source))
    return wh.versions.get(quarantine_asset(source), vid).scan_sql if vid else None


def replay_quarantine(
    wh: Warehouse,
    source: SourceConfig,
    contract: Contract,
    environment: str,
    *,
    actor: str,
    run_id: str | None = None,
    duckdb_config: dict[str, str] | None = None,
) -> ReplayResult:
    scan = quarantined(wh, source.name, environment)
    if scan is None:
        return ReplayResult(0, 0, 0, {})
    pointers = wh.resolve(environment)
    raw = pointers.get(source.asset)
    struct = json.dumps({c.name: "VARCHAR" for c in contract.columns})
    work_dir = wh.versions.new_pending_dir()
    con = duckdb.connect(config=duckdb_config or {})  # the installation's memory limit
    try:
        con.execute(f"CREATE TEMP TABLE _q AS SELECT {QUARANTINE_COLUMNS} FROM {scan}")
        counts = split_rows(
            con,
            f"SELECT unnest(from_json(row_json, {sql_literal(struct)})), "
            "source_position AS _elt_origin FROM _q",
            contract,
            position_sql="_elt_origin",
            # A quarantined duplicate stays quarantined: its key is already in the raw table.
            existing_keys_sql=f"SELECT * FROM {raw.scan_sql}" if raw is not None else None,
        )
        if counts.loaded == 0:
            return ReplayResult(counts.read, 0, counts.quarantined, counts.reasons)
        part = work_dir / "replayed.parquet"
        con.execute(f"COPY _elt_valid TO {sql_literal(str(part))} ({PART_COPY_OPTIONS})")
        version, _ = merge_batch(
            con,
            wh.versions,
            source.asset,
            source.name,
            raw,
            [SourcePart(part, "quarantine")],
            source.primary_key,
            full_refresh=False,
            work_dir=work_dir,
            record={
                "environment": environment,
                "run_id": run_id,
                "code_version": source.fingerprint,
                "params": {"source": source.name, "replayed_from": "quarantine"},
            },
        )
        remaining = wh.versions.write_query(
            con,
            quarantine_asset(source.name),
            f"SELECT DISTINCT {QUARANTINE_COLUMNS} FROM _elt_rejected ORDER BY ALL",
            environment=environment,
            run_id=run_id,
            params={"source": source.name},
        )
    finally:
        con.close()
        shutil.rmtree(work_dir, ignore_errors=True)
    states = ConnectorStateStore(wh.meta)
    if raw is not None and (kept := states.get(source.asset, raw.version_id)) is not None:
        # The cursor is unchanged: replayed rows were already read from the source once.
        states.save(source.asset, version.version_id, kept, environment=environment, run_id=run_id)
    wh.commit_pointers(
        environment, {source.asset: version, remaining.asset: remaining}, run_id=run_id
    )
    wh.ledger.append(
        "quarantine.replayed",
        actor=actor,
        environment=environment,
        run_id=run_id,
        params={
            "dataset": contract.dataset,
            "contract_version": contract.version,
            "replayed": counts.read,
            "loaded": counts.loaded,
            "still_quarantined": counts.quarantined,
        },
        assets={source.asset: version.version_id, remaining.asset: remaining.version_id},
    )
    return ReplayResult(counts.read, counts.loaded, counts.quarantined, counts.reasons)
