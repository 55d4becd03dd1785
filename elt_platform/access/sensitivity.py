"""Declared column sensitivity of every asset (dbt `meta`, overridden by contracts), plus the
private-aggregate datasets of the policy (all public), and the PII columns sandboxes mask. The
one owner of "how sensitive is this column"; read from files, never from the data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from elt_platform.access.masking_policy import AUTO, PiiColumns
from elt_platform.project.contracts.files import contracts_for
from elt_platform.project.manifest import Manifest, load_manifest
from elt_platform.project.policies import Policies
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


def _manifest(settings: Settings) -> Manifest | None:
    """The prepared manifest (None before the first `dbt parse`)."""
    try:
        return load_manifest(settings.manifest_path)
    except FileNotFoundError:
        return None


def declared_sensitivity(settings: Settings, policies: Policies | None = None) -> SensitivityMap:
    """The one reading of column sensitivity: dbt `meta.sensitivity`, with the contracts' levels
    taking precedence column by column."""
    manifest = _manifest(settings)
    columns = {a: dict(c) for a, c in (manifest.column_levels() if manifest else {}).items()}
    for asset, contract in contracts_for(settings.contracts_dir).items():
        for col in contract.columns:
            columns.setdefault(asset, {})[col.name] = str(col.sensitivity)
    return SensitivityMap(columns, policies)


def pii_masking_rules(settings: Settings) -> PiiColumns | None:
    """asset -> column -> masking rule of every column declared PII (what sandboxes mask); the
    rule is the column's `meta.masking`, else `auto`. None before the project is parsed: then
    the stored policy must be kept, not replaced by a partial one (fail closed)."""
    manifest = _manifest(settings)
    if manifest is None:
        return None
    rules = manifest.masking_rules("pii")
    out: PiiColumns = {}
    for asset, columns in declared_sensitivity(settings).columns.items():
        for column, level in columns.items():
            if level == "pii":
                out.setdefault(asset, {})[column] = rules.get(asset, {}).get(column, AUTO)
    return out
