"""Declared column sensitivity of every asset (dbt `meta`, overridden by contracts), plus the
private-aggregate datasets of the policy (all public), and the PII columns sandboxes mask. The
one owner of "how sensitive is this column"; read from files, never from the data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from elt_platform.access.masking_policy import ANY, AUTO, KEEP, PiiColumns
from elt_platform.project.manifest import load_manifest
from elt_platform.project.policies import Policies
from elt_platform.project.project_file import load_policies
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
    """asset -> column -> declared level; an undeclared column has the project's default level
    (`policies.defaults.sensitivity`), else None: unclassified."""

    columns: dict[str, dict[str, str]]
    policies: Policies | None = field(default=None, compare=False)
    default: str | None = None

    def level(self, asset: str, column: str) -> str | None:
        declared = self.columns.get(asset, {}).get(column)
        if declared is None and self.policies and private_dataset_of(asset, self.policies):
            return PUBLIC
        return declared or self.default

    def digest(self) -> str:
        blob = json.dumps([self.columns, self.default], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def declared_sensitivity(settings: Settings, policies: Policies | None = None) -> SensitivityMap:
    """The one reading of column sensitivity: each column's `meta.sensitivity` in the dbt YAML,
    else the project file's default (`policies.defaults.sensitivity`), else unclassified."""
    policies = policies or load_policies(settings)
    columns = {
        asset: {c.name: str(c.sensitivity) for c in contract.columns if c.sensitivity}
        for asset, contract in _contracts_for(settings, policies).items()
    }
    default = policies.defaults.sensitivity
    return SensitivityMap(
        {a: c for a, c in columns.items() if c}, policies, str(default) if default else None
    )


def masking_rules(settings: Settings) -> PiiColumns | None:
    """What sandboxes mask: asset -> column -> rule for every classified column — its
    `meta.masking` rule (else `auto`) for PII, `keep` below PII; any column not listed (undeclared,
    or added in a sandbox) is masked. None before the project is parsed: the stored policy must
    then be kept, not replaced by a partial one (fail closed)."""
    try:
        manifest = load_manifest(settings.manifest_path)
    except FileNotFoundError:
        return None
    pii_rules = manifest.masking_rules("pii")
    levels = declared_sensitivity(settings)
    out: PiiColumns = {}
    for asset, columns in levels.columns.items():
        for column, level in columns.items():
            rule = pii_rules.get(asset, {}).get(column, AUTO) if level == "pii" else KEEP
            out.setdefault(asset, {})[column] = rule
    if levels.default:  # what a column declared nowhere gets (listed under asset `*`)
        out[ANY] = {ANY: AUTO if levels.default == "pii" else KEEP}
    return out


def _contracts_for(settings: Settings, policies: Policies) -> dict:
    # The contract models (pydantic, pandas types) load only when sensitivity is first read,
    # not for every command that opens the warehouse.
    from elt_platform.project.contracts.from_dbt import contracts_for

    return contracts_for(settings, policies)
