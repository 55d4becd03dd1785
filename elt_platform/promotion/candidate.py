"""A release candidate: the source environment's builds, judged against the promotion policy.

Everything is read for exactly the builds being published (what each pointer serves): the run
that produced each build (and, for a reused build, the run that computed it) must have succeeded,
every gate recorded on the build must have passed (a reused build carries its checks over), and
the build must not have been computed from masked inputs. A later run cannot bypass them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from elt_platform.access.facade import GovernedWarehouse
from elt_platform.checks.compliance import promotion_violations
from elt_platform.environments import PROD
from elt_platform.orchestration.names import CODE_VERSION_TAG
from elt_platform.orchestration.runs import run_verdicts
from elt_platform.project.contracts.evolution import (
    breaking_change_approved,
    classify_contract_change,
    classify_schema_change,
)
from elt_platform.project.contracts.model import Contract
from elt_platform.project.promotion_policy import PromotionPolicy
from elt_platform.store.builds import SKIPPED
from elt_platform.store.releases import manifest_hash


@dataclass
class Candidate:
    source_environment: str
    manifest: dict[str, str]
    source_runs: dict[str, str | None]
    builds: dict[str, str | None] = field(default_factory=dict)  # asset -> build published
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


def evaluate_candidate(
    wh: GovernedWarehouse,
    instance: dg.DagsterInstance,
    asset_graph,
    policy: PromotionPolicy,
    contracts: dict[str, Contract] | None = None,
) -> Candidate:
    """Judge the builds the source environment serves as one release."""
    source = policy.source_environment
    pointers = wh.environments.pointers(source)
    served = wh.environments.pointer_builds(source)
    keys = sorted(asset_graph.materializable_asset_keys, key=lambda k: k.to_user_string())
    cand = Candidate(source, {}, {})
    builds = wh.builds.many(b for b in served.values() if b)
    for key in keys:
        name = key.to_user_string()
        if name not in pointers:
            cand.problems.append(f"{name}: no version in {source}")
            continue
        cand.manifest[name] = pointers[name]
        build = builds.get(served.get(name) or "")
        if build is None:
            cand.problems.append(f"{name}: version {pointers[name]} has no build record")
            continue
        cand.builds[name] = build.build_id
        cand.source_runs[name] = build.run_id
    _check_runs(wh, instance, cand, builds)
    for name, build_id in cand.builds.items():  # not switchable by policy
        if wh.builds.origin(builds[build_id]).masked:
            # This build was computed on masked PII in a sandbox: never production data (the
            # same content rebuilt in staging from real inputs is another build, and promotes).
            cand.problems.append(
                f"{name}: version {cand.manifest[name]} (build {build_id}) was computed on "
                "masked data in a sandbox; rebuild it in staging"
            )
    for key, specs in _blocking_checks(asset_graph).items():
        name = key.to_user_string()
        build_id = cand.builds.get(name)
        if build_id is None:
            continue
        recorded = wh.builds.checks(build_id)
        where = f"for version {cand.manifest[name]} (build {build_id})"
        for check, blocking in sorted(specs.items()):
            outcome = recorded.get(check)
            cand.checks.setdefault(name, {})[check] = outcome is not None and outcome.passed
            if not (blocking and policy.require_all_gates) or (outcome and outcome.passed):
                continue
            if outcome is None:
                cand.problems.append(f"{name}: check {check} was not evaluated {where}")
            elif outcome.status == SKIPPED:
                cand.problems.append(f"{name}: check {check} was skipped {where}")
            else:
                detail = f" ({outcome.detail})" if outcome.detail else ""
                cand.problems.append(f"{name}: check {check} failed {where}{detail}")
    for key in keys:
        node = asset_graph.get(key)
        if not node.owners:
            cand.govern(policy, "owner", f"{key.to_user_string()}: no owner")
        if not (node.description or "").strip():
            cand.govern(policy, "description", f"{key.to_user_string()}: no description")
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


def _check_runs(wh: GovernedWarehouse, instance, cand: Candidate, builds: dict) -> None:
    """Each build's run, and the run that computed a reused build, must have succeeded: a
    failed or canceled run may have left builds whose gates never ran. One problem per run."""
    origins = {b: wh.builds.origin(build) for b, build in builds.items()}
    by_run: dict[str, list[str]] = {}
    for name, build_id in cand.builds.items():
        for run_id in {builds[build_id].run_id, origins[build_id].run_id}:
            if run_id:
                by_run.setdefault(run_id, []).append(name)
    for run_id, verdict in sorted(run_verdicts(instance, by_run).items()):
        if verdict.status is None or verdict.succeeded:
            continue
        assets = sorted(set(by_run[run_id]))
        shown = ", ".join(assets[:4]) + (f" and {len(assets) - 4} more" if len(assets) > 4 else "")
        cand.problems.append(f"{verdict.describe()} (it built {shown})")


def _check_reproducible(wh: GovernedWarehouse, instance, asset_graph, cand: Candidate) -> None:
    labels: dict[str, set[str]] = {}
    for name, version_id in cand.manifest.items():
        build = wh.builds.get(cand.builds.get(name) or "")
        if build is None:
            continue  # already a problem
        if not build.code_version:
            cand.problems.append(f"{name}: version {version_id} has no recorded code version")
        parents = asset_graph.get(dg.AssetKey.from_user_string(name)).parent_keys
        if parents and not build.inputs:
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
