"""How dbt nodes become Dagster assets: owners from `meta.owner`, groups by folder, a code version
that changes with everything a node computes with (SQL, macros, inlined ephemeral models, config),
and dbt tests as checks partitioned by environment (without this they are stored with
partition=None)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from elt_platform.checks.freshness import freshness_policy
from elt_platform.orchestration.partitions import environment_partitions
from elt_platform.project.contracts.model import Contract
from elt_platform.project.manifest import Manifest, asset_key, layer, node_meta


class EnvironmentDbtTranslator(DagsterDbtTranslator):
    """Owners/description/freshness come from the data contract when one exists, else dbt meta."""

    def __init__(
        self, contracts: Mapping[str, Contract] | None = None, manifest: Manifest | None = None
    ) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_code_references=False))
        self._contracts = dict(contracts or {})
        self._manifest = manifest

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        """The manifest reader owns the key rule, so every reader of the project agrees."""
        return dg.AssetKey(asset_key(dbt_resource_props).split("/"))

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        contract = self._contracts.get(spec.key.to_user_string())
        owner = contract.owner if contract else node_meta(props).get("owner")
        spec = spec.merge_attributes(tags={"elt/layer": layer(props)})
        if self._manifest is not None and unique_id in self._manifest.nodes:
            # dbt's checksum misses macros and inlined ephemeral models: the planner must not.
            spec = spec.replace_attributes(code_version=self._manifest.code_version(unique_id))
        if owner and not spec.owners:
            spec = spec.replace_attributes(owners=[owner])
        if contract is not None:
            spec = spec.replace_attributes(
                freshness_policy=freshness_policy(contract),
                description=spec.description or contract.description,
            ).merge_attributes(metadata={"contract_version": contract.version})
        return spec

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return layer(dbt_resource_props)

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        severity = (manifest["nodes"].get(unique_id, {}).get("config") or {}).get("severity", "")
        return dg.AssetCheckSpec(
            name=spec.name,
            asset=spec.asset_key,
            description=spec.description,
            additional_deps=spec.additional_deps,
            blocking=str(severity).lower() == "error",
            metadata=spec.metadata,
            automation_condition=spec.automation_condition,
            partitions_def=environment_partitions,
        )
