"""A release candidate: the source environment's versions, judged against the promotion policy.

Gate results are read for exactly the versions being published: for each asset, the check
evaluations recorded by the run that set the asset's pointer. A later run cannot bypass them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from elt_platform.access.facade import GovernedWarehouse
from elt_platform.checks.compliance import promotion_violations
from elt_platform.environments import PROD
from elt_platform.orchestration.names import CODE_VERSION_TAG
from elt_platform.project.contracts.evolution import (
    breaking_change_approved,
    classify_contract_change,
    classify_schema_change,
)
from elt_platform.project.contracts.model import Contract
from elt_platform.project.promotion_policy import PromotionPolicy
from elt_platform.store.releases import manifest_hash


@dataclass
class Candidate:
    source_environment: str
    manifest: dict[str, str]
    source_runs: dict[str, str | None]
    checks: dict[str, dict[str, bool]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # governance findings the policy lets pass
    code_version: str | None = None
    contracts: dict[str, dict] = field(default_factory=dict)

    @property
    def eligible(self) -> bool:
        return not self.problems

    def govern(self, policy: PromotionPolicy, rule: str, finding: str) -> None:
        """A governance finding blocks or warns, as the policy sets its rule."""
        target = self.problems if policy.governance.level(rule) == "block" else self.warnings
        target.append(finding)

    @property
    def manifest_hash(self) -> str:
        return manifest_hash(self.manifest)

    def gate_summary(self) -> dict:
        passed = sum(ok for checks in self.checks.values() for ok in checks.values())
        total = sum(len(checks) for checks in self.checks.values())
        return {
            "checks_passed": passed,
            "checks_failed": total - passed,
            "source_runs": sorted({r for r in self.source_runs.values() if r}),
            "problems": self.problems,
            "warnings": self.warnings,
            # Contracts travel with the release: the next promotion classifies changes against them.
            "contracts": self.contracts,
        }


def _blocking_checks(asset_graph) -> dict[dg.AssetKey, dict[str, bool]]:
    out: dict[dg.AssetKey, dict[str, bool]] = {}
    for assets_def in asset_graph.assets_defs:
        for spec in assets_def.check_specs:
            out.setdefault(spec.asset_key, {})[spec.name] = spec.blocking
    return out


def _evaluations(instance: dg.DagsterInstance, run_id: str) -> dict[tuple[str, str], object]:
    found = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        data = record.dagster_event.event_specific_data
        found[(data.asset_key.to_user_string(), data.check_name)] = data
    return found


def _sample(evaluation) -> str:
    meta = evaluation.metadata or {}
    if getattr(evaluation, "description", None):
        detail = evaluation.description
        sample = meta.get("failure_sample")
        return detail + (f"; sample: {getattr(sample, 'value', sample)}" if sample else "")
    for key in ("failure_sample", "failed_rows", "dagster_dbt/failed_row_count"):
        if key in meta:
            return f"{key}={getattr(meta[key], 'value', meta[key])}"
    return ""


def evaluate_candidate(
    wh: GovernedWarehouse,
    instance: dg.DagsterInstance,
    asset_graph,
    policy: PromotionPolicy,
    contracts: dict[str, Contract] | None = None,
) -> Candidate:
    """Judge the source environment's current versions as one release."""
    source = policy.source_environment
    pointers = wh.environments.pointers(source)
    runs = wh.environments.pointer_runs(source)
    keys = sorted(asset_graph.materializable_asset_keys, key=lambda k: k.to_user_string())
    cand = Candidate(source, {}, {})
    for key in keys:
        name = key.to_user_string()
        if name not in pointers:
            cand.problems.append(f"{name}: no version in {source}")
            continue
        cand.manifest[name] = pointers[name]
        cand.source_runs[name] = runs.get(name)
    evaluations: dict[str, dict] = {}
    for run_id in {r for r in cand.source_runs.values() if r}:
        evaluations[run_id] = _evaluations(instance, run_id)
    for key, specs in _blocking_checks(asset_graph).items():
        name = key.to_user_string()
        if name not in cand.manifest:
            continue
        run_id = cand.source_runs.get(name)
        for check, blocking in sorted(specs.items()):
            ev = evaluations.get(run_id or "", {}).get((name, check))
            if ev is None:
                cand.checks.setdefault(name, {})[check] = False
                if policy.require_all_gates and blocking:
                    cand.problems.append(
                        f"{name}: check {check} was not evaluated for version "
                        f"{cand.manifest[name]} (run {run_id})"
                    )
                continue
            cand.checks.setdefault(name, {})[check] = bool(ev.passed)
            if not ev.passed and blocking and policy.require_all_gates:
                detail = _sample(ev)
                cand.problems.append(
                    f"{name}: check {check} failed for version {cand.manifest[name]}"
                    + (f" ({detail})" if detail else "")
                )
    for key in keys:
        node = asset_graph.get(key)
        if not node.owners:
            cand.govern(policy, "owner", f"{key.to_user_string()}: no owner")
        if not (node.description or "").strip():
            cand.govern(policy, "description", f"{key.to_user_string()}: no description")
    for name, version_id in cand.manifest.items():  # not switchable by policy
        if wh.versions.record(name, version_id)["params"].get("pii_masked"):
            # Sandbox outputs are computed on masked PII: never production data.
            cand.problems.append(
                f"{name}: version {version_id} was computed on masked data in a sandbox; "
                "rebuild it in staging"
            )
    if policy.require_reproducible:
        _check_reproducible(wh, instance, asset_graph, cand)
    cand.contracts = {
        name: c.model_dump(mode="json")
        for name, c in (contracts or {}).items()
        if name in cand.manifest
    }
    if policy.block_breaking_changes:
        _check_breaking(wh, cand, contracts or {})
    for violation in promotion_violations(wh):  # the compliance gate
        cand.govern(policy, violation.rule, f"governance: {violation}")
    return cand


def _check_reproducible(wh: GovernedWarehouse, instance, asset_graph, cand: Candidate) -> None:
    labels: dict[str, set[str]] = {}
    for name, version_id in cand.manifest.items():
        record = wh.versions.record(name, version_id)
        if not record.get("code_version"):
            cand.problems.append(f"{name}: version {version_id} has no recorded code version")
        parents = asset_graph.get(dg.AssetKey.from_user_string(name)).parent_keys
        if parents and not record.get("inputs"):
            cand.problems.append(f"{name}: version {version_id} has no recorded input versions")
        run_id = cand.source_runs.get(name)
        run = instance.get_run_by_id(run_id) if run_id else None
        label = run.tags.get(CODE_VERSION_TAG) if run else None
        if label is None:
            cand.problems.append(f"{name}: build run {run_id} recorded no code version")
        else:
            labels.setdefault(label, set()).add(name)
    if len(labels) > 1:
        detail = "; ".join(f"{lbl}: {', '.join(sorted(a))}" for lbl, a in sorted(labels.items()))
        cand.problems.append(f"assets were built from different code versions ({detail})")
    elif labels:
        cand.code_version = next(iter(labels))


def _check_breaking(wh: GovernedWarehouse, cand: Candidate, contracts: dict[str, Contract]) -> None:
    """Breaking changes against what prod serves need a contract major bump + migration note.

    Two views: the contracts themselves (against the contracts recorded with the current
    release) and the schemas actually produced (against prod's versions).
    """
    current = wh.releases.current()
    recorded = (current.gate_summary or {}).get("contracts", {}) if current else {}
    approved: set[str] = set()
    for name, new in contracts.items():
        if name not in recorded or name not in cand.manifest:
            continue
        old = Contract.model_validate(recorded[name])
        breaking = [c for c in classify_contract_change(old, new) if c.breaking]
        if breaking_change_approved(old, new):
            approved.add(name)
        elif breaking:
            cand.problems.append(
                f"{name}: breaking contract change without a major version bump and migration "
                f"note: {'; '.join(f'{c.column or name}: {c.kind}' for c in breaking)}"
            )
    prod = wh.environments.pointers(PROD)
    for name, version_id in cand.manifest.items():
        if name not in prod or prod[name] == version_id or name in approved:
            continue
        old_schema = wh.versions.get(name, prod[name]).schema_dict
        new_schema = wh.versions.get(name, version_id).schema_dict
        breaking = [c for c in classify_schema_change(name, old_schema, new_schema) if c.breaking]
        if breaking:
            cand.problems.append(
                f"{name}: breaking schema change ({'; '.join(c.detail for c in breaking)}) "
                "without a contract major version bump and migration note"
            )
