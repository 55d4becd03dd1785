"""`elt governance check`: the governance rules every asset must meet, checked from the repository's
files (dbt project, contracts, sources.yaml, policies.yaml) and, given an installation, from what
its environments actually expose. Runs in `make test` and as a promotion gate.

Rules: every asset has an owner, a retention period and a retention column (or a reason why its
rows are not dated); every column declares a sensitivity; a column computed from PII (column
lineage) is declared PII itself, so sandbox masking covers it; an asset marked public exposes no
PII; sandbox masking covers every PII column; the policy names only known roles, environments
and datasets; no sandbox serves a PII column unmasked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elt_platform.audit.column_lineage import ROWS, ColumnRef
from elt_platform.audit.lineage import PII, LineageGraph, build_graph
from elt_platform.environments import EnvironmentKind
from elt_platform.errors import EltError
from elt_platform.governance.policies import Policies, load_policies, policies_path
from elt_platform.governance.sensitivity import declared_sensitivity, private_dataset_of
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


def load_graph(settings: Settings, wh: Any | None = None) -> tuple[LineageGraph, dict]:
    """The lineage graph of the configured project (and the manifest it came from)."""
    from elt_platform.audit.compiled import compiled_sql
    from elt_platform.connectors.config import load_sources
    from elt_platform.contracts.loading import contracts_for
    from elt_platform.dbt.project import load_dbt_project, prepare_manifest

    cfg = load_dbt_project(settings)
    manifest = json.loads(prepare_manifest(cfg).read_text())
    known: dict[str, dict[str, str]] = {}
    if wh is not None:
        for version in wh.versions.list():
            known[version.asset] = dict(version.schema)  # newest last, so newest wins
    graph = build_graph(
        manifest,
        compiled_sql(cfg),
        sources=load_sources(settings.sources_config),
        contracts=dict(contracts_for(settings.contracts_dir)),
        known_columns=known,
    )
    return graph, manifest


def check_compliance(
    settings: Settings, *, wh: Any | None = None, policies_file: Path | None = None
) -> ComplianceReport:
    """Every violation of the governance rules (an empty report means compliant)."""
    report = ComplianceReport()
    path = policies_file or policies_path()
    policies: Policies | None = None
    try:
        policies = load_policies(path)
    except EltError as exc:
        located = re.match(r":(\d+): (.*)", exc.args[0].removeprefix(str(path)))
        subject, message = (
            (f"{path.name}:{located[1]}", located[2]) if located else (path.name, exc.args[0])
        )
        report.add(subject, "policy", message)
    try:
        graph, manifest = load_graph(settings, wh)
    except EltError as exc:
        report.add("project", "project", exc.args[0])
        return report
    if policies is not None:
        report.roles = len(policies.roles)
        _check_policy(report, policies, wh)
    _check_assets(report, graph, policies)
    _check_lineage(report, graph, manifest)
    if wh is not None and policies is not None:
        _check_live(report, graph, policies, settings, wh)
    return report


def _check_policy(report: ComplianceReport, policies: Policies, wh: Any | None) -> None:
    from elt_platform.governance.aggregates import SOURCES

    for name in policies.privacy.datasets:
        if name not in SOURCES:
            report.add(f"privacy.datasets.{name}", "policy", "no release is implemented for it")
    if wh is None:
        return
    existing = {r.name for r in wh.environments.list()}
    for role, spec in policies.roles.items():
        for pattern in [*spec.read, *spec.write]:
            name = pattern.removeprefix("sandbox:")
            if pattern.startswith("sandbox:") and name not in {"*", "own"} and name not in existing:
                report.add(f"roles.{role}", "policy", f"references unknown environment {pattern!r}")


def _check_assets(report: ComplianceReport, graph: LineageGraph, policies: Policies | None) -> None:
    governed = policies.assets if policies else {}
    for key, info in sorted(graph.assets.items()):
        report.assets += 1
        extra = governed.get(key)
        if not (info.owner or (extra and extra.owner)):
            report.add(key, "owner", "no owner (set it in its contract, dbt meta or policies.yaml)")
        # Without a readable policy only its own error is reported, not one per asset.
        if policies is not None and not (info.retention or (extra and extra.retention)):
            report.add(key, "retention", "no retention period (contract or policies.yaml assets)")
        if policies is not None and extra is None:
            report.add(key, "retention", "no retention_column in policies.yaml assets")
        elif extra is not None and extra.dated and extra.retention_column not in info.columns:
            report.add(
                key, "retention", f"retention_column {extra.retention_column!r} is not a column"
            )
        for column, col in sorted(info.columns.items()):
            report.columns += 1
            if not col.sensitivity:
                report.add(f"{key}.{column}", "sensitivity", "no sensitivity declared")
    for name, ds in sorted((policies.privacy.datasets if policies else {}).items()):
        report.assets += 1
        if not (ds.owner and ds.retention):
            report.add(f"privacy.datasets.{name}", "owner", "needs an owner and a retention")


def _check_lineage(report: ComplianceReport, graph: LineageGraph, manifest: dict) -> None:
    from elt_platform.sandboxes.pii import pii_columns_from_manifest

    masked = pii_columns_from_manifest(manifest)  # what sandbox catalogs mask
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
                    str(ref), "pii-lineage",
                    f"computed from PII ({shown}) but declared {declared or 'nothing'}; "
                    "declare it pii so it is masked, or stop deriving it from PII",
                )  # fmt: skip
            if info.sensitivity == "public" and graph.effective_sensitivity(ref) == PII:
                report.add(str(ref), "pii-public", f"PII in {key}, which is marked public")
            if graph.effective_sensitivity(ref) == PII and column not in masked.get(key, {}):
                report.add(
                    str(ref), "pii-sandbox",
                    "PII reaches sandboxes unmasked: the dbt project does not declare it "
                    "`sensitivity: pii` (sandbox masking reads the dbt declarations)",
                )  # fmt: skip


def _check_live(
    report: ComplianceReport, graph: LineageGraph, policies: Policies, settings: Settings, wh: Any
) -> None:
    """What the installation's sandboxes actually expose, version by version."""
    from elt_platform.sandboxes.pii import load_policy, masked_at_rest

    levels = declared_sensitivity(settings, policies)
    stored = load_policy(wh.meta)
    for record in wh.environments.list():
        for asset, version in wh.resolve(record.name).items():
            known = asset in graph.assets or private_dataset_of(asset, policies)
            if not known:
                report.add(
                    asset, "owner", f"served by {record.name} but declared nowhere (no owner, "
                    "sensitivity or retention)",
                )  # fmt: skip
            if record.environment.kind is not EnvironmentKind.SANDBOX:
                continue
            if masked_at_rest(wh.meta, asset, version.version_id):
                continue
            for column, _ in version.schema:
                ref = ColumnRef(asset, column)
                pii = levels.level(asset, column) == PII or (
                    asset in graph.assets and graph.effective_sensitivity(ref) == PII
                )
                if pii and column not in stored.get(asset, {}):
                    report.add(
                        f"sandbox {record.name}: {ref}", "pii-sandbox",
                        f"PII served unmasked (version {version.version_id}); recreate the "
                        "sandbox after `elt dbt prepare` so its masking policy covers it",
                    )  # fmt: skip
        if record.environment.kind is EnvironmentKind.SANDBOX:
            report.sandboxes += 1


def promotion_problems(wh: Any) -> list[str]:
    """The promotion gate: every violation except those of individual sandboxes (a sandbox's
    exposure is its owner's problem, not a reason to hold back prod)."""
    import os

    from elt_platform.settings import load_settings

    # The warehouse lives at <ELT_HOME>/warehouse; the project files come from the settings.
    settings = load_settings({**os.environ, "ELT_HOME": str(Path(wh.root).parent)})
    report = check_compliance(settings, wh=wh)
    return [f"governance: {v}" for v in report.violations if not v.subject.startswith("sandbox ")]
