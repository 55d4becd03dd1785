"""Selective rebuild: which assets of a sandbox must be recomputed, and which keep resolving to the
versions of its source release.

An asset is reused when a version exists (the release's first, then the sandbox's own) that was
built by the same code version, from the same input versions, with the same values of the dbt vars
its SQL references. Anything else is rebuilt, and so is everything downstream of a rebuilt asset
(its input will change), as dbt's `state:modified+` would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

from elt_platform.project.manifest import Manifest
from elt_platform.store.metadata import MetadataStore

VARS_PARAM = "vars"
LINEAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS build_lineage (
    environment TEXT NOT NULL,
    asset TEXT NOT NULL,
    version_id TEXT NOT NULL,
    code_version TEXT,
    inputs_json TEXT NOT NULL,
    params_json TEXT NOT NULL,
    PRIMARY KEY (environment, asset, version_id)
);
"""


@dataclass(frozen=True)
class Decision:
    asset: str
    rebuild: bool
    reason: str
    version_id: str | None = None  # what the asset resolves to when it is not rebuilt


@dataclass(frozen=True)
class RebuildPlan:
    decisions: dict[str, Decision] = field(default_factory=dict)

    @property
    def rebuild(self) -> list[str]:
        return [a for a, d in self.decisions.items() if d.rebuild]

    @property
    def reuse(self) -> dict[str, str]:
        return {
            a: d.version_id for a, d in self.decisions.items() if not d.rebuild and d.version_id
        }


@dataclass(frozen=True)
class Lineage:
    """What a version was built from, as recorded when it was committed."""

    code_version: str | None
    inputs: dict[str, str]
    params: dict[str, Any]


def model_var_values(manifest: Manifest, dbt_vars: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """asset -> the values of the vars its SQL reads (what a build of it depends on besides code
    and inputs). The one rule for both the plan and the build."""
    return {
        asset: {v: dbt_vars[v] for v in sorted(used & dbt_vars.keys())}
        for asset, used in manifest.vars_read_by_asset().items()
    }


def lineage(meta: MetadataStore, asset: str, version_id: str) -> Lineage | None:
    """The lineage recorded when the version was first committed."""
    with meta.read() as con:
        row = con.execute(
            "SELECT code_version, inputs_json, params_json FROM versions"
            " WHERE asset = ? AND version_id = ?",
            (asset, version_id),
        ).fetchone()
    if row is None:
        return None
    return Lineage(row[0], json.loads(row[1] or "{}"), json.loads(row[2] or "{}"))


def lineages(meta: MetadataStore, environment: str, asset: str, version_id: str) -> list[Lineage]:
    """Every way `version_id` is known to have been built: first commit, plus each later build in
    `environment` (versions are content-addressed, so a rebuild from other inputs that gives the
    same content keeps the first commit's record)."""
    found = [x for x in [lineage(meta, asset, version_id)] if x is not None]
    _ensure_schema(meta)
    with meta.read() as con:
        rows = con.execute(
            "SELECT code_version, inputs_json, params_json FROM build_lineage"
            " WHERE environment = ? AND asset = ? AND version_id = ?",
            (environment, asset, version_id),
        ).fetchall()
    return found + [Lineage(r[0], json.loads(r[1]), json.loads(r[2])) for r in rows]


def record_lineage(
    meta: MetadataStore, environment: str, built: Mapping[tuple[str, str], Lineage]
) -> None:
    """Remember how each (asset, version) was just built in `environment`."""
    _ensure_schema(meta)
    with meta.transaction() as tx:
        tx.executemany(
            "INSERT OR REPLACE INTO build_lineage (environment, asset, version_id, code_version,"
            " inputs_json, params_json) VALUES (?,?,?,?,?,?)",
            [
                (
                    environment,
                    asset,
                    vid,
                    x.code_version,
                    json.dumps(x.inputs, sort_keys=True),
                    json.dumps(x.params, sort_keys=True, default=str),
                )
                for (asset, vid), x in built.items()
            ],
        )


def _ensure_schema(meta: MetadataStore) -> None:
    with meta.read() as con:
        con.executescript(LINEAGE_SCHEMA)


def plan_rebuild(
    meta: MetadataStore,
    assets: Iterable[str],
    *,
    environment: str,
    deps: Mapping[str, Iterable[str]],
    code_versions: Mapping[str, str | None],
    var_values: Mapping[str, Mapping[str, Any]],
    pointers: Mapping[str, str],
    base: Mapping[str, str],
) -> RebuildPlan:
    """Decide rebuild/reuse for `assets` (in dependency order) given the environment's pointers
    and its base release manifest; deps outside `assets` resolve to the environment's pointers."""
    wanted = list(dict.fromkeys(assets))
    graph = {a: {d for d in deps.get(a, ()) if d in wanted} for a in wanted}
    decisions: dict[str, Decision] = {}
    for asset in TopologicalSorter(graph).static_order():
        decisions[asset] = _decide(
            meta,
            environment,
            asset,
            list(deps.get(asset, ())),
            decisions,
            code_versions.get(asset),
            dict(var_values.get(asset, {})),
            pointers,
            base,
        )
    return RebuildPlan(decisions)  # in dependency order: outputs must be yielded that way


def _decide(
    meta, environment, asset, asset_deps, decided, code_version, values, pointers, base
) -> Decision:
    rebuilt = sorted(d for d in asset_deps if d in decided and decided[d].rebuild)
    if rebuilt:
        return Decision(asset, True, f"upstream {rebuilt[0]} is rebuilt")
    inputs = {}
    for dep in asset_deps:
        resolved = decided[dep].version_id if dep in decided else pointers.get(dep)
        if resolved is not None:
            inputs[dep] = resolved
    candidates = list(dict.fromkeys(v for v in (base.get(asset), pointers.get(asset)) if v))
    if not candidates:
        return Decision(asset, True, "no version yet")
    if code_version is None:
        return Decision(asset, True, "no code version to compare")
    reasons = []
    for version_id in candidates:
        known = lineages(meta, environment, asset, version_id) or [None]
        mismatches = [_mismatch(found, code_version, inputs, values) for found in known]
        if None in mismatches:
            return Decision(asset, False, "unchanged", version_id)
        reasons.append(mismatches[0])
    return Decision(asset, True, reasons[0])


def _mismatch(found: Lineage | None, code_version: str, inputs: dict, values: dict) -> str | None:
    if found is None:
        return "version record missing"
    if found.code_version != code_version:
        return "code changed"
    for dep in sorted(set(inputs) | set(found.inputs)):
        if inputs.get(dep) != found.inputs.get(dep):
            return f"input {dep} changed"
    recorded = found.params.get(VARS_PARAM) or {}
    for name in sorted(set(values) | set(recorded)):
        if values.get(name) != recorded.get(name):
            return f"var {name} changed"
    return None
