"""Declared column sensitivity of every asset: dbt `meta`, overridden by contracts, plus the
private-aggregate datasets of the policy (all public). Read from files, never from the data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from elt_platform.contracts.loading import contracts_for
from elt_platform.governance.policies import Policies
from elt_platform.settings import Settings

PRIVATE_SCHEMA_PREFIX = "dp_"  # private aggregates live at dp_<consumer>/<dataset>
PUBLIC = "public"


def private_dataset_of(asset: str, policies: Policies) -> str | None:
    """The private-aggregate dataset an asset key such as `dp_partner/orders_by_region_month` is
    a release of (None for any other asset)."""
    schema, _, name = asset.partition("/")
    if schema.startswith(PRIVATE_SCHEMA_PREFIX) and name in policies.privacy.datasets:
        return name
    return None


@dataclass(frozen=True)
class SensitivityMap:
    """asset -> column -> declared level; lookups of undeclared columns return None."""

    columns: dict[str, dict[str, str]]
    policies: Policies | None = field(default=None, compare=False)

    def level(self, asset: str, column: str) -> str | None:
        declared = self.columns.get(asset, {}).get(column)
        if declared is None and self.policies and private_dataset_of(asset, self.policies):
            return PUBLIC
        return declared

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.columns, sort_keys=True).encode()).hexdigest()[:12]


@lru_cache(maxsize=4)
def _manifest_levels(path: str, stamp: int) -> dict[str, dict[str, str]]:
    from elt_platform.audit.lineage import asset_key

    manifest = json.loads(Path(path).read_text())
    out: dict[str, dict[str, str]] = {}
    nodes = [*manifest.get("nodes", {}).values(), *manifest.get("sources", {}).values()]
    for node in nodes:
        if node.get("resource_type") not in {"model", "source", "seed", "snapshot"}:
            continue
        for name, spec in (node.get("columns") or {}).items():
            meta = {**(spec.get("meta") or {}), **((spec.get("config") or {}).get("meta") or {})}
            level = meta.get("sensitivity")
            if level:
                out.setdefault(asset_key(node), {})[name] = str(level).lower()
    return out


def manifest_levels(settings: Settings) -> dict[str, dict[str, str]]:
    """Levels declared in the prepared dbt manifest (empty when none was prepared yet)."""
    path = settings.dbt_project_dir / "target" / "manifest.json"
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    return _manifest_levels(str(path), stamp)


def declared_sensitivity(settings: Settings, policies: Policies | None = None) -> SensitivityMap:
    """dbt meta levels with the contracts' levels taking precedence column by column."""
    columns = {asset: dict(cols) for asset, cols in manifest_levels(settings).items()}
    for asset, contract in contracts_for(settings.contracts_dir).items():
        for col in contract.columns:
            columns.setdefault(asset, {})[col.name] = str(col.sensitivity)
    return SensitivityMap(columns, policies)
