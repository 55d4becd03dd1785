"""`elt governance check`: the governance rules every asset must meet, checked from the repository's
files (the dbt project's YAML and its elt_project.yml) and, given an installation, from what
its environments actually expose. Runs in `make test` and as a promotion gate.

Rules: every asset has an owner, a retention period and a retention column (or a reason why its
rows are not dated); every column declares a sensitivity; a column computed from PII (column
lineage) is declared PII itself, so sandbox masking covers it; an asset marked public exposes no
PII; sandbox masking covers every PII column; the policy names only known roles, environments
and datasets; no sandbox serves a PII column unmasked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from elt_platform.access.facade import GovernedWarehouse
from elt_platform.access.masking_policy import (
    KEEP,
    PiiColumns,
    load_masking_policy,
    masked_at_rest,
    rule_of,
)
from elt_platform.access.sensitivity import (
    declared_sensitivity,
    masking_rules,
    private_dataset_of,
)
from elt_platform.environments import EnvironmentKind
from elt_platform.errors import EltError
from elt_platform.project.column_lineage import ROWS, ColumnRef
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.contracts.model import Contract
from elt_platform.project.lineage import PII, LineageGraph, load_lineage
from elt_platform.project.policies import PRIVATE_DATASET_INPUTS, Policies
from elt_platform.project.project_file import load_policies
from elt_platform.settings import Settings


@dataclass(frozen=True)
class Violation:
    subject: str  # asset, asset.column, `sandbox NAME: asset.column` or a policy file location
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


@dataclass
class ComplianceReport:
    violations: list[Violation] = field(default_factory=list)
    assets: int = 0
    columns: int = 0
    roles: int = 0
    sandboxes: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, subject: str, rule: str, message: str) -> None:
        self.violations.append(Violation(subject, rule, message))


def check_compliance(
    settings: Settings, *, wh: GovernedWarehouse | None = None
) -> ComplianceReport:
    """Every violation of the governance rules (an empty report means compliant); given a
    warehouse, also what its environments expose."""
    report = ComplianceReport()
    path = settings.project_file
    try:
        policies = load_policies(settings)
    except EltError as exc:
        located = re.match(r":(\d+): (.*)", exc.args[0].removeprefix(str(path)))
        subject, message = (
            (f"{path.name}:{located[1]}", located[2]) if located else (path.name, exc.args[0])
        )
        report.add(subject, "policy", message)
        return report  # the project file does not parse: nothing else can be judged from it
    try:
        graph = load_lineage(settings, stored_schemas=wh is not None)
        contracts = contracts_for(settings, policies)
    except EltError as exc:
        report.add("project", "project", exc.args[0])
        return report
    report.roles = len(policies.roles)
    _check_policy(report, policies, wh)
    _check_assets(report, graph, contracts, policies)
    _check_lineage(report, graph, masking_rules(settings) or {})
    if wh is not None:
        _check_live(report, graph, policies, settings, wh)
    return report


def _check_policy(
    report: ComplianceReport, policies: Policies, wh: GovernedWarehouse | None
) -> None:
    for name in policies.privacy.datasets:
        if name not in PRIVATE_DATASET_INPUTS:
            report.add(f"privacy.datasets.{name}", "policy", "no release is implemented for it")
    if wh is None:
        return
    existing = {r.name for r in wh.environments.list()}
    for role, spec in policies.roles.items():
        for pattern in [*spec.read, *spec.write]:
            name = pattern.removeprefix("sandbox:")
            if pattern.startswith("sandbox:") and name not in {"*", "own"} and name not in existing:
                report.add(f"roles.{role}", "policy", f"references unknown environment {pattern!r}")


def _check_assets(
    report: ComplianceReport,
    graph: LineageGraph,
    contracts: dict[str, Contract],
    policies: Policies,
) -> None:
    for key, info in sorted(graph.assets.items()):
        report.assets += 1
        contract = contracts.get(key) or Contract(dataset=key)
        if not (contract.owner or info.owner):
            report.add(key, "owner", "no owner (dbt meta `owner`, or policies.defaults.owner)")
        if not contract.retention:
            report.add(key, "retention", "no retention period (dbt meta `retention`)")
        if contract.retention_column is None:
            report.add(
                key, "retention", "no retention_column (dbt meta `retention_column`, or `none`)"
            )
        elif contract.retention_column != "none" and contract.retention_column not in info.columns:
            report.add(
                key, "retention", f"retention_column {contract.retention_column!r} is not a column"
            )
        for column, col in sorted(info.columns.items()):
            report.columns += 1
            if not col.sensitivity:
                report.add(f"{key}.{column}", "sensitivity", "unclassified (no `meta.sensitivity`)")
    for name, ds in sorted(policies.privacy.datasets.items()):
        report.assets += 1
        if not (ds.owner and ds.retention):
            report.add(f"privacy.datasets.{name}", "owner", "needs an owner and a retention")


def _check_lineage(report: ComplianceReport, graph: LineageGraph, masked: PiiColumns) -> None:
    """`masked`: what sandbox catalogs mask."""
    for key, info in sorted(graph.assets.items()):
        for column in sorted(info.columns):
            ref = ColumnRef(key, column)
            if column == ROWS:
                continue
            sources = [r for r in graph.pii_sources(ref) if r != ref]
            declared = graph.declared_sensitivity(ref)
            if sources and declared != PII:
                shown = ", ".join(str(r) for r in sources[:3])
                report.add(
                    str(ref),
                    "pii-lineage",
                    f"computed from PII ({shown}) but declared {declared or 'nothing'}; "
                    "declare it pii so it is masked, or stop deriving it from PII",
                )
            if info.sensitivity == "public" and graph.effective_sensitivity(ref) == PII:
                report.add(str(ref), "pii-public", f"PII in {key}, which is marked public")
            shown = rule_of(masked, key, column) == KEEP
            if graph.effective_sensitivity(ref) == PII and shown:
                report.add(
                    str(ref),
                    "pii-sandbox",
                    "PII reaches sandboxes unmasked: the dbt project does not declare it "
                    "`sensitivity: pii` (sandbox masking reads the dbt declarations)",
                )


def _check_live(
    report: ComplianceReport,
    graph: LineageGraph,
    policies: Policies,
    settings: Settings,
    wh: GovernedWarehouse,
) -> None:
    """What the installation's sandboxes actually expose, version by version."""
    levels = declared_sensitivity(settings, policies)
    stored = load_masking_policy(wh.meta)
    for record in wh.environments.list():
        for asset, version in wh.resolve(record.name).items():
            known = asset in graph.assets or private_dataset_of(asset, policies)
            if not known:
                report.add(
                    asset,
                    "owner",
                    f"served by {record.name} but declared nowhere (no owner, "
                    "sensitivity or retention)",
                )
            if record.environment.kind is not EnvironmentKind.SANDBOX:
                continue
            if masked_at_rest(wh.meta, asset, version.version_id):
                continue
            for column, _ in version.schema:
                ref = ColumnRef(asset, column)
                pii = levels.level(asset, column) == PII or (
                    asset in graph.assets and graph.effective_sensitivity(ref) == PII
                )
                if pii and rule_of(stored, asset, column) == KEEP:
                    report.add(
                        f"sandbox {record.name}: {ref}",
                        "pii-sandbox",
                        f"PII served unmasked (version {version.version_id}); recreate the "
                        "sandbox after `elt dbt prepare` so its masking policy covers it",
                    )
        if record.environment.kind is EnvironmentKind.SANDBOX:
            report.sandboxes += 1


def promotion_violations(wh: GovernedWarehouse) -> list[Violation]:
    """What the promotion gate judges: every violation except those of individual sandboxes (a
    sandbox's exposure is its owner's problem, not a reason to hold back prod)."""
    report = check_compliance(wh.settings, wh=wh)
    return [v for v in report.violations if not v.subject.startswith("sandbox ")]
