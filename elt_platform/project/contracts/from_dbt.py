"""Contracts read from the dbt YAML, the one declaration of every dataset.

dbt says most of it natively: column names, `data_type`, descriptions, tests (`not_null` makes a
column non-nullable, `unique` unique, `accepted_values` its allowed values), model contract
constraints, model `version`, source `freshness`. The rest is `meta` on the node or the column:

    meta: {owner, objective, primary_key, retention, retention_column, retention_reason,
           freshness: {max_lag}, drift_policy, volume: {max_drop, max_growth},
           contract_version, migration_note}
    column meta: {sensitivity, masking, constraints: {min, max, regex}}

What a node does not say comes from the project file's `policies:` (per-asset overlays, then
project-wide defaults), so a project the platform may not edit can still be governed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from elt_platform.errors import ContractError
from elt_platform.project.contracts.model import Contract, normalize_type
from elt_platform.project.manifest import (
    DATA_KINDS,
    Manifest,
    asset_key,
    column_meta,
    load_manifest,
    node_meta,
)
from elt_platform.project.policies import Policies
from elt_platform.project.project_file import connector_sources, load_policies
from elt_platform.project.sources import SourceConfig
from elt_platform.settings import Settings

_NODE_META = (
    "owner",
    "objective",
    "primary_key",
    "retention",
    "retention_column",
    "retention_reason",
    "freshness",
    "drift_policy",
    "volume",
    "contract_version",
    "migration_note",
)
_PERIOD_UNITS = {"minute": "m", "hour": "h", "day": "d"}


def column_tests(manifest: Manifest) -> dict[str, dict[str, dict[str, Any]]]:
    """unique_id -> column -> {test name: kwargs} of the generic tests attached to a column."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for node in manifest.nodes.values():
        test = node.get("test_metadata") or {}
        if node.get("resource_type") != "test" or not test:
            continue
        kwargs = test.get("kwargs") or {}
        column = node.get("column_name") or kwargs.get("column_name")
        parent = node.get("attached_node") or next(
            iter((node.get("depends_on") or {}).get("nodes") or []), None
        )
        if column and parent:
            out.setdefault(parent, {}).setdefault(column, {})[test.get("name", "")] = kwargs
    return out


def contract_of(
    node: Mapping[str, Any], tests: Mapping[str, Mapping[str, Any]], policies: Policies
) -> Contract:
    """The contract one manifest node declares (ContractError naming the YAML file and key)."""
    asset = asset_key(node)
    meta = node_meta(node)
    overlay = policies.assets.get(asset)
    defaults = policies.defaults
    data: dict[str, Any] = {k: meta[k] for k in _NODE_META if meta.get(k) is not None}
    data["dataset"] = asset
    data["kind"] = node.get("resource_type", "model")
    data["description"] = (node.get("description") or "").strip() or (
        (overlay and overlay.description) or ""
    )
    data["enforced"] = bool(((node.get("config") or {}).get("contract") or {}).get("enforced"))
    if "contract_version" in data:
        data["version"] = data.pop("contract_version")
    elif node.get("version"):
        data["version"] = node["version"]
    for key, fallback in (
        ("owner", (overlay and overlay.owner) or defaults.owner),
        ("retention", (overlay and overlay.retention) or defaults.retention),
        ("retention_column", overlay and overlay.retention_column),
        ("retention_reason", overlay and overlay.reason),
    ):
        if key not in data and fallback:
            data[key] = fallback
    if "freshness" not in data and _source_freshness(node):
        data["freshness"] = {"max_lag": _source_freshness(node)}
    if isinstance(data.get("primary_key"), str):
        data["primary_key"] = [c.strip() for c in data["primary_key"].split(",") if c.strip()]
    if "primary_key" not in data:
        unique = [c for c, t in tests.items() if "unique" in t]
        if unique:  # a surrogate `_id` key first, as a reader would pick it
            data["primary_key"] = [sorted(unique, key=lambda c: not c.endswith("_id"))[0]]
    overlay_levels = overlay.columns if overlay else {}
    declared = dict(node.get("columns") or {})
    declared.update({c: {"name": c} for c in overlay_levels if c not in declared})
    data["columns"] = [
        _column(name, spec, tests.get(name, {}), overlay_levels.get(name) or defaults.sensitivity)
        for name, spec in declared.items()
    ]
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _yaml_path(node, first["loc"], data)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ContractError(f"{where}: {message}") from None


def _column(
    name: str, spec: Mapping[str, Any], tests: Mapping[str, Any], fallback_sensitivity
) -> dict[str, Any]:
    """A column as its YAML declares it; sensitivity from its `meta`, else `fallback`."""
    meta = column_meta(spec)
    constraints = dict(meta.get("constraints") or {})
    if "unique" in tests:
        constraints["unique"] = True
    if "accepted_values" in tests:
        constraints["allowed_values"] = [str(v) for v in tests["accepted_values"].get("values", [])]
    declared = {c.get("type") for c in spec.get("constraints") or [] if isinstance(c, Mapping)}
    return {
        "name": name,
        "type": normalize_type(spec["data_type"]) if spec.get("data_type") else None,
        "nullable": "not_null" not in tests and "not_null" not in declared,
        "description": (spec.get("description") or "").strip(),
        "sensitivity": meta.get("sensitivity") or fallback_sensitivity,
        "constraints": constraints,
    }


def _source_freshness(node: Mapping[str, Any]) -> str | None:
    """dbt source freshness (`error_after`, else `warn_after`) as a max lag such as 24h."""
    freshness = node.get("freshness") or (node.get("config") or {}).get("freshness") or {}
    for key in ("error_after", "warn_after"):
        rule = freshness.get(key) or {}
        if rule.get("count") and rule.get("period") in _PERIOD_UNITS:
            return f"{rule['count']}{_PERIOD_UNITS[rule['period']]}"
    return None


def _yaml_path(node: Mapping[str, Any], loc: tuple, data: Mapping[str, Any]) -> str:
    """`models/marts/_marts.yml: models.orders.columns.email.meta.sensitivity` for an error."""
    path = (node.get("patch_path") or "").split("://")[-1] or node.get("original_file_path", "")
    kind = "sources" if node.get("resource_type") == "source" else f"{node['resource_type']}s"
    name = f"{node['source_name']}.{node['name']}" if kind == "sources" else node["name"]
    parts = [kind, name]
    if loc and loc[0] == "columns" and len(loc) > 1 and isinstance(loc[1], int):
        column = data["columns"][loc[1]]["name"]
        rest = [str(p) for p in loc[2:]]
        parts += ["columns", column, *(["meta", *rest] if rest else [])]
    elif loc:
        key = "contract_version" if loc[0] == "version" else str(loc[0])
        parts += ["meta", key, *(str(p) for p in loc[1:])]
    return f"{path}: {'.'.join(parts)}"


def contracts_from_manifest(manifest: Manifest, policies: Policies) -> dict[str, Contract]:
    """asset -> contract for every model, seed, snapshot and source of the manifest."""
    tests = column_tests(manifest)
    return {
        asset_key(node): contract_of(node, tests.get(uid, {}), policies)
        for uid, node in manifest.data_nodes(DATA_KINDS)
    }


def contracts_for(settings: Settings, policies: Policies | None = None) -> dict[str, Contract]:
    """The contracts of the installation's project (none before its first `dbt parse`)."""
    try:
        manifest = load_manifest(settings.manifest_path)
    except FileNotFoundError:
        return {}
    return contracts_from_manifest(manifest, policies or load_policies(settings))


def contract_digest(contract: Contract) -> str:
    """Changes with anything the contract says (its gates, drift policy, constraints...)."""
    return hashlib.sha256(contract.model_dump_json().encode()).hexdigest()[:12]


def load_sources(settings: Settings) -> list[SourceConfig]:
    """The project's connector sources, each completed from its table's declaration (owner,
    description, primary key); empty when the raw data is dbt seeds."""
    contracts = contracts_for(settings)
    out = []
    for source in connector_sources(settings):
        contract = contracts.get(source.asset)
        if contract is not None:
            source = replace(
                source,
                owner=contract.owner or source.owner,
                description=contract.description or source.description,
                primary_key=tuple(contract.primary_key) or source.primary_key,
                contract_digest=contract_digest(contract) if contract.gated else "",
            )
        out.append(source)
    return out
