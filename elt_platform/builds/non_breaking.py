"""The planner's non-breaking test (`planner.NonBreaking`) for a dbt project: does a change of an
upstream model's SQL leave what a downstream model reads from it unchanged? The columns the
downstream reads come from its compiled SQL (cached by a run or compile, never compiled here),
with the stored schemas of the versions its build read; the upstream's old and new SQL come
from the code archive (`project/change_impact.py`). Anything it cannot decide is breaking.
"""

from __future__ import annotations

from collections.abc import Mapping

from elt_platform.builds.planner import NonBreaking
from elt_platform.errors import EltError
from elt_platform.project.change_impact import (
    archive_code,
    archived_code,
    columns_read,
    unchanged_for,
)
from elt_platform.project.compiled_sql import cached_compiled
from elt_platform.project.dbt_project import DbtProjectConfig
from elt_platform.project.manifest import Manifest, is_ephemeral, relation
from elt_platform.store.versions import VersionStore


def non_breaking_check(
    versions: VersionStore, cfg: DbtProjectConfig, manifest: Manifest
) -> NonBreaking:
    """The check for the project as `manifest` describes it (its models' SQL is archived first,
    so the next change can be compared with it)."""
    archive_code(cfg, manifest)
    models = {
        manifest.asset_keys[uid]: uid
        for uid, node in manifest.nodes.items()
        if node.get("resource_type") == "model" and not is_ephemeral(node)
    }

    def check(
        asset: str, upstream: str, old_code: str, new_code: str, inputs: Mapping[str, str]
    ) -> str | None:
        if asset not in models or upstream not in models:
            return None
        old_sql, new_sql = archived_code(cfg, old_code), archived_code(cfg, new_code)
        compiled = cached_compiled(cfg, manifest, models[asset])
        if old_sql is None or new_sql is None or compiled is None:
            return None
        schema = {}
        for dep, version_id in inputs.items():
            node = manifest.by_asset.get(dep)
            if node is None:
                continue
            try:
                schema[relation(node)] = versions.get(dep, version_id).schema_dict
            except EltError:
                return None
        columns = columns_read(compiled, relation(manifest.by_asset[upstream]), schema)
        if columns is None:
            return None
        same, _ = unchanged_for(old_sql, new_sql, columns, manifest)
        if not same:
            return None
        read = sorted(c for c in columns if c != "*")
        return (
            f"{upstream}'s change is non-breaking for it (it reads {len(read)} of its columns, "
            "none changed)"
        )

    return check
