"""Contract gate: a pandera (polars back end) schema derived from the data contract, validated
against a version's Parquet files batch by batch (`contract_scan`) without row-by-row Python."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl

from elt_platform.checks.contract_scan import scan_version
from elt_platform.project.contracts.model import Contract, DriftPolicy
from elt_platform.store.versions import Version

_SIMPLE = {
    "bigint": pl.Int64,
    "integer": pl.Int32,
    "smallint": pl.Int16,
    "double": pl.Float64,
    "float": pl.Float32,
    "varchar": pl.String,
    "boolean": pl.Boolean,
    "date": pl.Date,
    "timestamp": pl.Datetime("us"),
}
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")


@dataclass(frozen=True)
class GateOutcome:
    """One gate's verdict on one version, with numeric metadata for the UI."""

    name: str
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)
    failed_rows: int = 0


def polars_type(contract_type: str | None) -> pl.DataType | None:
    """The polars type of a contract type (None: undeclared, any type passes)."""
    if contract_type is None:
        return None
    if contract_type in _SIMPLE:
        return _SIMPLE[contract_type]
    match = _DECIMAL.match(contract_type)
    if match:
        return pl.Decimal(int(match.group(1)), int(match.group(2)))
    raise ValueError(f"no polars type for {contract_type!r}")


def pandera_schema(contract: Contract) -> pa.DataFrameSchema:
    """Types, nullability, uniqueness, ranges, allowed values and regexes from the contract (a
    column with nothing declared is not checked)."""
    columns = {}
    for col in contract.columns:
        if not col.checkable:
            continue
        c = col.constraints
        checks = []
        if c.min is not None:
            checks.append(pa.Check.ge(c.min))
        if c.max is not None:
            checks.append(pa.Check.le(c.max))
        if c.allowed_values is not None:
            checks.append(pa.Check.isin(c.allowed_values))
        if c.regex is not None:
            checks.append(pa.Check.str_matches(c.regex))
        columns[col.name] = pa.Column(
            polars_type(col.type), checks=checks, nullable=col.nullable, unique=c.unique
        )
    # Under `evolve` the source may add columns (recorded as drift); otherwise the set is frozen.
    strict = contract.drift_policy is not DriftPolicy.EVOLVE
    return pa.DataFrameSchema(columns, strict=strict, name=contract.dataset)


def check_contract(
    version: Version, contract: Contract, duckdb_config: Mapping[str, str] | None = None
) -> GateOutcome:
    """Validate every row of `version` against `contract`; report failing rows and null rates.

    Memory is bounded by one batch (`BATCH_ROWS`), not the version: columns declared unique are
    checked across the whole version by DuckDB (spilling under `duckdb_config`'s limits)."""
    scan = scan_version(version, pandera_schema(contract), duckdb_config)
    rows = scan.rows
    null_rates = {name: (n / rows if rows else 0.0) for name, n in scan.null_counts.items()}
    meta: dict[str, object] = {
        "rows": rows,
        "max_null_rate": round(max(null_rates.values(), default=0.0), 6),
        "contract_version": contract.version,
    }
    cases = scan.failure_cases
    if scan.failed:
        failed_rows = _failed_row_count(cases, rows)
        sample = cases.head(5).to_dicts() if cases is not None else []
        meta.update(
            failed_rows=failed_rows,
            failed_checks=int(cases.height) if cases is not None else 1,
            failure_sample=str(sample)[:1000],
        )
        return GateOutcome(
            "contract",
            False,
            f"{failed_rows} rows violate contract {contract.dataset}",
            meta,
            failed_rows,
        )
    meta.update(failed_rows=0, failed_checks=0)
    return GateOutcome("contract", True, f"all {rows} rows satisfy the contract", meta)


def _failed_row_count(cases: pl.DataFrame | None, rows: int) -> int:
    """Distinct failing row indices when pandera reports them; schema-level failures count all."""
    if cases is None or "index" not in cases.columns:
        return rows
    indexed = cases.filter(pl.col("index").is_not_null())
    if indexed.height < cases.height:  # a column-level failure (type, missing column) taints all
        return rows
    return int(indexed.select(pl.col("index").n_unique()).item())
