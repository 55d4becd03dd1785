"""Scaffolding for a team's dbt project: `elt init` writes the optional project file with commented
defaults and a fill-in governance section for what the dbt YAML does not declare; `elt new
source` writes one connector entry, its dbt `sources:` YAML, a staging model and its tests from a
template that parameterizes only what differs between connectors (the ecosystem's habit, as
`dg scaffold` does for Dagster components)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from elt_platform.errors import ConfigError
from elt_platform.project.contracts.model import Contract
from elt_platform.project.lineage import LineageGraph

# Column names that usually hold personal data: suggested `pii` until someone decides.
_PERSONAL = re.compile(
    r"(e_?mail|phone|mobile|first_?name|last_?name|full_?name|surname|given_?name|address|street|"
    r"postal|zip_?code|birth|dob|ssn|passport|iban|card_?number|ip_?address)",
    re.IGNORECASE,
)
_DATED = re.compile(r"(_at|_on|_date|_time|_ts|^date|^created|^updated)$|date", re.IGNORECASE)
CONNECTORS = ("files", "sql", "http")


@dataclass
class GovernanceGaps:
    """What a project has not declared yet, per asset (what `elt init` lists and templates)."""

    no_owner: list[str] = field(default_factory=list)
    no_description: list[str] = field(default_factory=list)
    no_retention: list[str] = field(default_factory=list)
    unclassified: dict[str, list[str]] = field(default_factory=dict)
    personal: dict[str, list[str]] = field(default_factory=dict)  # looks like personal data
    dated: dict[str, list[str]] = field(default_factory=dict)  # retention column candidates

    @property
    def assets(self) -> list[str]:
        names = {*self.no_owner, *self.no_description, *self.no_retention, *self.unclassified}
        return sorted(names)


def governance_gaps(graph: LineageGraph, contracts: dict[str, Contract]) -> GovernanceGaps:
    gaps = GovernanceGaps()
    for key, info in sorted(graph.assets.items()):
        contract = contracts.get(key) or Contract(dataset=key)
        columns = list(info.columns)
        if not (contract.owner or info.owner):
            gaps.no_owner.append(key)
        if not (contract.description or info.description):
            gaps.no_description.append(key)
        if not contract.retention or contract.retention_column is None:
            gaps.no_retention.append(key)
        unclassified = [c for c, i in info.columns.items() if not i.sensitivity]
        if unclassified:
            gaps.unclassified[key] = unclassified
        personal = [c for c in unclassified if _PERSONAL.search(c)]
        if personal:
            gaps.personal[key] = personal
        gaps.dated[key] = [c for c in columns if _DATED.search(c)]
    return gaps


def project_file_text(project_name: str, gaps: GovernanceGaps) -> str:
    """The commented project file `elt init` writes: every default spelled out, and a TODO for
    every governance fact the dbt YAML lacks (replace each `null`; dbt `meta` always wins)."""
    lines = [
        f"# The platform's file for the dbt project `{project_name}`, written by `elt init`.",
        "# Optional: every section below shows its defaults. What each dataset *is* (columns,",
        "# types, tests, owner, sensitivity, retention) belongs in the dbt YAML as `meta`; the",
        "# `policies:` section can declare it for a project you cannot edit (dbt `meta` wins).",
        "version: 1",
        "",
        "# Raw tables the platform extracts (none when the raw data are dbt seeds).",
        "# `elt new source --connector files|sql|http NAME` adds one with its dbt YAML and model.",
        "connectors:",
        "  defaults:",
        "    retries: {max_retries: 3, delay_seconds: 2}",
        "  sources: {}",
        "",
        "# Feature flags and dbt vars per environment (layers: defaults, sandboxes, <name>).",
        "environments:",
        "  defaults: {flags: {}, vars: {}}",
        "  sandboxes: {flags: {}, vars: {}}",
        "  environments: {}",
        "",
        "# What a release must pass to reach prod. Gates on data always block; governance",
        "# findings (owner, description, sensitivity, retention) warn until `strict: true`.",
        "promotion:",
        "  require_all_gates: true",
        "  require_reproducible: true",
        "  block_breaking_changes: true",
        "  source_environment: staging",
        "  keep_releases: 10",
        "  gc_grace_hours: 1",
        "  governance:",
        "    strict: false          # set true once every TODO below is filled",
        "",
        "# Roles (built in: engineer, analyst, steward, auditor), users pinned to roles, and",
        "# governance the dbt YAML does not declare.",
        "policies:",
        "  default_role: engineer",
        "  users: {}",
        "  defaults:",
        "    owner: null            # TODO: team:<name> or an e-mail, for assets without one",
        "    retention: null        # TODO: how long rows are kept, e.g. 400d",
        "    sensitivity: null      # TODO: public, internal, confidential or pii (undeclared)",
    ]
    if gaps.assets:
        lines.append("  assets:")
    for asset in gaps.assets:
        lines.append(f"    {_key(asset)}:")
        if asset in gaps.no_description:
            lines.append("      description: null       # TODO: what one row is")
        if asset in gaps.no_retention:
            candidates = ", ".join(gaps.dated.get(asset, [])) or "none found"
            lines.append(
                f"      retention_column: null  # TODO: dates a row ({candidates}), or `none`"
            )
            lines.append("      reason: null            # ... and then why rows never expire")
        if asset in gaps.personal:
            levels = ", ".join(f"{c}: pii" for c in gaps.personal[asset])
            lines.append(f"      columns: {{{levels}}}  # looks like personal data: confirm")
    return "\n".join(lines) + "\n"


def _key(asset: str) -> str:
    return f'"{asset}"' if "/" in asset else asset


def write_project_file(path: Path, text: str, *, force: bool = False) -> None:
    if path.exists() and not force:
        raise ConfigError(
            f"{path} already exists", hint="edit it, or pass --force to write a fresh one"
        )
    path.write_text(text)


@dataclass(frozen=True)
class NewSource:
    """What `elt new source` needs to know; everything else comes from the template."""

    name: str
    connector: str
    options: dict[str, object]
    primary_key: list[str]
    columns: list[tuple[str, str]]  # (name, dbt data_type); empty when not discovered


def add_connector(project_file: Path, source: NewSource) -> None:
    """Add the connector entry under `connectors.sources` (the file is created if missing)."""
    data = yaml.safe_load(project_file.read_text()) if project_file.exists() else None
    data = data or {"version": 1}
    sources = data.setdefault("connectors", {}).setdefault("sources", {}) or {}
    if source.name in sources:
        raise ConfigError(
            f"{project_file}: connectors.sources.{source.name} already exists",
            hint="choose another NAME or edit the existing entry",
        )
    entry = {"connector": source.connector, **source.options}
    block = yaml.safe_dump({source.name: entry}, sort_keys=False, default_flow_style=False)
    indented = "".join(f"    {line}\n" for line in block.splitlines())
    if not project_file.exists() or "connectors" not in (project_file.read_text() or ""):
        text = project_file.read_text() if project_file.exists() else "version: 1\n"
        project_file.write_text(text.rstrip() + "\n\nconnectors:\n  sources:\n" + indented)
        return
    text = project_file.read_text()
    # Keep the file's comments: insert the entry text under `connectors:` -> `sources:`.
    inline = re.compile(r"^(  sources:)\s*\{\s*\}\s*$", re.MULTILINE)
    block_start = re.compile(r"^  sources:\s*(#.*)?$", re.MULTILINE)
    section = text.index("connectors:")
    match = inline.search(text, section) or block_start.search(text, section)
    if match is None:
        raise ConfigError(f"{project_file}: cannot find connectors.sources to add {source.name}")
    head = text[: match.start()] + "  sources:\n"
    project_file.write_text(head + indented + text[match.end() :])


def dbt_files(project_dir: Path, source: NewSource) -> dict[Path, str]:
    """The dbt YAML and SQL of a new raw table: its source declaration, a staging model over it
    and the model's tests (unique/not_null on the key)."""
    staging = project_dir / "models" / "staging"
    columns = source.columns
    key = source.primary_key
    column_yaml = (
        "".join(
            f"          - name: {c}\n            data_type: {t}\n"
            + ("            data_tests: [not_null]\n" if c in key else "")
            for c, t in columns
        )
        or "          []  # TODO: declare the columns (name, data_type, meta.sensitivity)\n"
    )
    meta = f"{{owner: null, primary_key: [{', '.join(key)}]}}  # TODO: owner"
    source_yaml = (
        "version: 2\n\nsources:\n"
        f"  - name: raw\n    schema: raw\n    tables:\n"
        f"      - name: {source.name}\n"
        f"        description: TODO what one row of {source.name} is\n"
        f"        config:\n          meta: {meta}\n"
        f"        columns:\n{column_yaml}"
    )
    select = ",\n".join(f"    {c}" for c, _ in columns) or "    *"
    model_sql = (
        f"-- Staging model of raw.{source.name}: rename and cast here, one row per source row.\n"
        f"select\n{select}\nfrom {{{{ source('raw', '{source.name}') }}}}\n"
    )
    key_tests = "".join(
        f"      - name: {c}\n        data_tests: [unique, not_null]\n"
        if len(key) == 1
        else f"      - name: {c}\n        data_tests: [not_null]\n"
        for c in key
    )
    empty = "      []\n"
    model_yaml = (
        "version: 2\n\nmodels:\n"
        f"  - name: stg_{source.name}\n"
        f"    description: {source.name} from raw.{source.name}, typed and renamed.\n"
        f"    columns:\n{key_tests or empty}"
    )
    return {
        staging / f"_raw_{source.name}__source.yml": source_yaml,
        staging / f"stg_{source.name}.sql": model_sql,
        staging / f"_stg_{source.name}.yml": model_yaml,
    }
