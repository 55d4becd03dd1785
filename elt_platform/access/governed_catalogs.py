"""Governed catalogs: per-role variants of an environment's catalog whose views mask every column
the role may not see (by declared sensitivity; undeclared columns are masked too, fail closed).

They are ordinary catalogs (views over the same versions, rebuilt atomically, fresh by pointers),
kept under `catalogs/_governed/<profile>/` where the profile names the masked levels and a digest
of the declarations, so a changed declaration gives a fresh catalog rather than a stale one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from elt_platform.access.masking import masked_select, masking_key, sandbox_masks
from elt_platform.access.masking_policy import AUTO, KEEP, load_masking_policy, rule_of
from elt_platform.access.sensitivity import SensitivityMap
from elt_platform.environments import EnvironmentKind
from elt_platform.store.catalog import CatalogStore, RelationSql
from elt_platform.store.pointers import EnvironmentRecord
from elt_platform.store.versions import Version
from elt_platform.store.warehouse import Warehouse

GOVERNED_DIR = "_governed"


def columns_to_mask(
    asset: str, schema: Iterable[tuple[str, str]], masked: frozenset[str], levels: SensitivityMap
) -> list[str]:
    """Columns of `asset` whose declared level is masked for the role, or that are undeclared."""
    out = []
    for column, _ in schema:
        level = levels.level(asset, column)
        if level is None or level in masked:
            out.append(column)
    return out


class GovernedCatalogs(CatalogStore):
    """Catalogs as one role sees them; sandboxes keep their own PII masking underneath."""

    def __init__(self, wh: Warehouse, masked: frozenset[str], levels: SensitivityMap) -> None:
        key = masking_key()
        digest = hashlib.sha256(f"{levels.digest()}:{key.key_id}".encode()).hexdigest()[:10]
        profile = "mask_" + "_".join(sorted(masked)) + f"-{digest}"
        folder = wh.root / "catalogs" / GOVERNED_DIR / profile
        super().__init__(
            folder, wh.environments, wh.versions, sandbox_relations=wh.catalogs.sandbox_relations
        )
        self.masked = masked
        self.levels = levels
        self.salt = key.salt

    def relation_sql_for(self, record: EnvironmentRecord) -> RelationSql:
        base = super().relation_sql_for(record)
        # In a sandbox, the columns the sandbox masks are already masked by the base view (or were
        # computed from masked inputs): masking them twice would change the tokens.
        stored = load_masking_policy(self.versions.meta)
        in_sandbox = record.environment.kind is EnvironmentKind.SANDBOX

        def relation(asset: str, version: Version) -> str:
            inner = base(asset, version)
            skip = sandbox_masks(stored, asset, version.schema) if in_sandbox else {}
            rules = {
                c: rule if (rule := rule_of(stored, asset, c)) != KEEP else AUTO
                for c in columns_to_mask(asset, version.schema, self.masked, self.levels)
                if c not in skip
            }
            if not rules:
                return inner
            return masked_select(f"({inner})", version.schema, rules, self.salt)

        return relation


def governed_root(wh: Warehouse) -> Path:
    return wh.root / "catalogs" / GOVERNED_DIR
