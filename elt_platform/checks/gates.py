"""Gate checks as partitioned, blocking Dagster asset checks, evaluated inline on a new version."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from elt_platform.checks.contract import GateOutcome, check_contract
from elt_platform.checks.quality import CheckSummary, quality_score
from elt_platform.checks.volume import check_volume
from elt_platform.environments import PROD
from elt_platform.orchestration.partitions import environment_partitions
from elt_platform.project.contracts.model import Contract
from elt_platform.store.builds import FAILED, PASSED, STALE_INPUTS, CheckOutcome
from elt_platform.store.versions import Version
from elt_platform.store.warehouse import Warehouse

GATE_NAMES = ("contract", "volume")
_DESCRIPTIONS = {
    "contract": "Every row satisfies the data contract (types, nulls, keys, ranges, values).",
    "volume": "Row count is within the contract's tolerance of the version prod serves.",
}


def gate_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name=name,
            asset=asset_key,
            description=_DESCRIPTIONS[name],
            blocking=True,
            partitions_def=environment_partitions,
        )
        for name in GATE_NAMES
    ]


def evaluate_gates(
    wh: Warehouse,
    version: Version,
    contract: Contract,
    duckdb_config: Mapping[str, str] | None = None,
) -> list[GateOutcome]:
    """The gates' verdicts on `version` (`duckdb_config`: limits of the contract gate's DuckDB)."""
    prod_vid = wh.environments.pointers(PROD).get(version.asset)
    prod_rows = wh.versions.get(version.asset, prod_vid).rows if prod_vid else None
    return [
        check_contract(version, contract, duckdb_config),
        check_volume(version.rows, prod_rows, contract.volume, stale=_stale_in_prod(wh, version)),
    ]


def _stale_in_prod(wh: Warehouse, version: Version) -> str | None:
    """The input retention rewrote under prod's build of the asset, if any: that build counts
    rows that no longer exist, so it is no baseline for a volume comparison."""
    build_id = wh.environments.pointer_builds(PROD).get(version.asset)
    build = wh.builds.get(build_id) if build_id else None
    if build is None:
        return None
    stale = build.params.get(STALE_INPUTS) or wh.builds.origin(build).params.get(STALE_INPUTS)
    return stale[0] if stale else None


def to_check_result(asset_key: dg.AssetKey, outcome: GateOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={k: v for k, v in outcome.metadata.items() if v is not None},
    )


def to_outcome(result: dg.AssetCheckResult) -> CheckOutcome:
    """A check result as its build records it (with a sample of failing rows, if any)."""
    detail = result.description or ""
    sample = (result.metadata or {}).get("failure_sample")
    if sample is not None and not result.passed:
        detail += f"; sample: {getattr(sample, 'value', sample)}"
    return CheckOutcome(
        result.check_name or "",
        PASSED if result.passed else FAILED,
        result.severity == dg.AssetCheckSeverity.ERROR,
        detail,
    )


def summaries_from_results(results: list[dg.AssetCheckResult]) -> list[CheckSummary]:
    out = []
    for r in results:
        failed = r.metadata.get("failed_rows")
        failed_rows = int(getattr(failed, "value", failed) or 0) if failed is not None else 0
        out.append(
            CheckSummary(
                name=r.check_name or "",
                passed=r.passed,
                blocking=r.severity == dg.AssetCheckSeverity.ERROR,
                failed_rows=failed_rows,
            )
        )
    return out


def score(results: list[dg.AssetCheckResult], rows: int) -> float:
    return quality_score(summaries_from_results(results), rows)
