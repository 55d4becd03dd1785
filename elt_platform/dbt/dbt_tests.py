"""Every dbt test is a gate: data tests with one parent or many, and unit tests.

dagster-dbt turns a test with one parent (or an attached node) into an asset check; a singular test
reading several models becomes an `AssetObservation`, and unit tests become nothing. Here each such
test becomes a partitioned check on every parent it reads (a unit test: on the model it tests), and
the outcome of every test in a run is read from dbt's own `run_results.json` (passed, failed or
skipped), so the build records hold every gate, whichever way dagster-dbt reported it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from elt_platform.orchestration.partitions import environment_partitions
from elt_platform.project.manifest import Manifest, TestGate
from elt_platform.store.builds import FAILED, PASSED, SKIPPED, CheckOutcome

RUN_RESULTS = "run_results.json"
_STATUS = {"pass": PASSED, "success": PASSED, "warn": FAILED, "fail": FAILED, "error": FAILED}


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str  # dbt's: success, error, skipped, pass, fail, warn
    message: str
    failures: int | None


class _MultiParentNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "singular test with multiple dependencies" not in record.getMessage()


@contextmanager
def multi_parent_tests_are_checks() -> Iterator[None]:
    """While dbt runs: drop dagster-dbt's warning that a multi-parent test is only an observation
    (it tells users to edit their project; here such a test is a check on every parent)."""
    logger, notice = logging.getLogger("dagster.builtin"), _MultiParentNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def read_run_results(target_path: Path) -> dict[str, NodeResult]:
    """unique_id -> result of every node dbt ran (empty if dbt wrote no results)."""
    path = Path(target_path) / RUN_RESULTS
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {
        r["unique_id"]: NodeResult(
            r["unique_id"], str(r.get("status", "")), str(r.get("message") or ""), r.get("failures")
        )
        for r in data.get("results", [])
    }


def extra_gate_specs(
    manifest: Manifest, asset_keys: Iterable[dg.AssetKey]
) -> list[dg.AssetCheckSpec]:
    """Checks dagster-dbt does not create: every parent of a multi-parent test other than the one
    it attaches the test to, and the model of every unit test."""
    known = {k.to_user_string() for k in asset_keys}
    specs = []
    for gate in manifest.test_gates():
        others = [a for a in gate.assets if a != gate.attached and a in known]
        for asset in others:
            kind = "unit test" if gate.unit else "dbt test"
            reads = ", ".join(gate.assets)
            specs.append(
                dg.AssetCheckSpec(
                    name=gate.name,
                    asset=dg.AssetKey.from_user_string(asset),
                    description=f"{kind} {gate.name} (reads {reads}; gates each of them)",
                    blocking=gate.blocking,
                    partitions_def=environment_partitions,
                )
            )
    return specs


def test_outcomes(
    manifest: Manifest, results: Mapping[str, NodeResult]
) -> dict[str, dict[str, CheckOutcome]]:
    """asset -> check name -> outcome of every test this run executed or skipped, on every
    parent the test reads."""
    out: dict[str, dict[str, CheckOutcome]] = {}
    for gate in manifest.test_gates():
        result = results.get(gate.unique_id)
        if result is None:
            continue
        status = SKIPPED if result.status == "skipped" else _STATUS.get(result.status, FAILED)
        outcome = CheckOutcome(gate.name, status, gate.blocking, _detail(gate, result))
        for asset in gate.assets:
            out.setdefault(asset, {})[gate.name] = outcome
    return out


def extra_check_results(
    manifest: Manifest,
    outcomes: Mapping[str, Mapping[str, CheckOutcome]],
    selected: Iterable[dg.AssetCheckKey],
) -> list[dg.AssetCheckResult]:
    """Dagster check results for the gates of `extra_gate_specs` that this run evaluated."""
    wanted = set(selected)
    by_name: dict[str, TestGate] = {g.name: g for g in manifest.test_gates()}
    results = []
    for asset, checks in sorted(outcomes.items()):
        key = dg.AssetKey.from_user_string(asset)
        for name, outcome in sorted(checks.items()):
            gate = by_name.get(name)
            if gate is None or asset == gate.attached or outcome.status == SKIPPED:
                continue
            if dg.AssetCheckKey(key, name) in wanted:
                results.append(to_check_result(key, outcome))
    return results


def to_check_result(key: dg.AssetKey, outcome: CheckOutcome, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
        description=outcome.detail or None,
        metadata=metadata,
    )


def first_failure(manifest: Manifest, results: Mapping[str, NodeResult]) -> str | None:
    """`test <name> failed: <dbt message>` for the first node that errored or failed."""
    for result in results.values():
        if result.status in {"error", "fail"}:
            node = manifest.node(result.unique_id) or {}
            kind = str(node.get("resource_type") or "node").replace("_", " ")
            verb = "failed" if result.status == "fail" else "errored"
            message = result.message.strip().splitlines()[0] if result.message.strip() else ""
            return f"{kind} {node.get('name', result.unique_id)} {verb}" + (
                f": {message}" if message else ""
            )
    return None


def _detail(gate: TestGate, result: NodeResult) -> str:
    if result.status == "skipped":
        return f"skipped by dbt: {result.message}".strip(": ")
    if result.status in {"pass", "success"}:
        return ""
    failing = f"{result.failures} failing rows" if result.failures else result.status
    return f"{'unit test' if gate.unit else 'test'} {gate.name}: {failing} ({result.message})"
