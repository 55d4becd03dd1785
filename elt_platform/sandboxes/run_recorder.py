"""What a sandbox keeps of each of its dbt runs: a diff of every rebuilt model against the release
it started from (as materialization metadata) and the run folded into its experiment record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import duckdb

from elt_platform.access.facade import GovernedWarehouse
from elt_platform.access.masking import sandbox_relation_sql
from elt_platform.dbt.environment_run import DbtRunSetup
from elt_platform.environments import PROD
from elt_platform.errors import UnknownExperiment
from elt_platform.project.code_version import current_code_version
from elt_platform.project.manifest import Manifest
from elt_platform.sandboxes.diff_markdown import MAX_EXAMPLES, diff_markdown
from elt_platform.sandboxes.experiment import ExperimentStore, record_run
from elt_platform.sandboxes.row_diff import TableDiff, diff_relations
from elt_platform.store.versions import Version


class SandboxRunRecorder:
    """A `RunObserver` of dbt runs: diffs and experiment records for sandboxes only."""

    def after_dbt_run(
        self,
        context: dg.AssetExecutionContext,
        wh: GovernedWarehouse,
        setup: DbtRunSetup,
        manifest: Manifest,
        new_versions: Mapping[str, Version],
        events: list,
    ) -> dict[str, dict[str, Any]]:
        """In a sandbox: diff each rebuilt model against its release version and fold the run
        into the experiment record. Returns extra materialization metadata per asset."""
        extra: dict[str, dict[str, Any]] = {asset: {} for asset in new_versions}
        if not setup.is_sandbox:
            return extra
        keys = manifest.primary_keys()
        # A fresh relation: it must see the versions just committed as already masked.
        relation_sql = sandbox_relation_sql(wh.meta)
        diffs: dict[str, dict[str, Any]] = {}
        prod = wh.environments.pointers(PROD)
        current = wh.releases.current()
        prod_label = f"prod (release {current.release_id})" if current else "prod"
        con = duckdb.connect(config=wh.settings.duckdb_config())
        try:
            con.execute("SET enable_progress_bar = false")

            def diff(asset: str, version: Version, left_id: str) -> TableDiff:
                return diff_relations(
                    con,
                    asset,
                    relation_sql(asset, wh.versions.get(asset, left_id)),
                    relation_sql(asset, version),
                    key=keys.get(asset),
                    left_version=left_id,
                    right_version=version.version_id,
                    examples=MAX_EXAMPLES,
                )

            for asset, version in new_versions.items():
                base_id, prod_id = setup.base_manifest.get(asset), prod.get(asset)
                vs_base = vs_prod = None
                if base_id is not None:
                    if base_id == version.version_id:
                        diffs[asset] = {"identical": True, "left_version": base_id}
                    else:
                        vs_base = diff(asset, version, base_id)
                        diffs[asset] = vs_base.summary()
                    extra[asset]["diff_vs_release"] = dg.MetadataValue.json(diffs[asset])
                    for field_name in ("added", "removed", "changed"):
                        value = diffs[asset].get(field_name, 0)
                        if isinstance(value, int):
                            extra[asset][f"diff_rows_{field_name}"] = value
                if prod_id is None:
                    extra[asset]["diff_vs_prod"] = dg.MetadataValue.md(
                        f"### {asset}\n\nNew: prod serves no version of {asset}."
                    )
                    continue
                if prod_id == version.version_id:
                    vs_prod = TableDiff(asset, prod_id, prod_id, mode="identical")
                else:
                    vs_prod = vs_base if prod_id == base_id else diff(asset, version, prod_id)
                # What the analyst proposes, against what prod serves now (it may have moved
                # since the sandbox was created): schema, counts and a few example rows.
                extra[asset]["diff_vs_prod"] = dg.MetadataValue.md(
                    diff_markdown(vs_prod, prod_label, setup.environment.name)
                )
        finally:
            con.close()
        _record(context, wh, setup, new_versions, events, diffs)
        return extra


def _record(context, wh, setup: DbtRunSetup, new_versions, events, diffs) -> None:
    checks: dict[str, dict[str, Any]] = {}
    for event in events:
        if isinstance(event, dg.AssetCheckResult) and event.asset_key is not None:
            entry = checks.setdefault(
                event.asset_key.to_user_string(), {"passed": 0, "failed": 0, "failed_checks": []}
            )
            if event.passed:
                entry["passed"] += 1
            else:
                entry["failed"] += 1
                entry["failed_checks"].append(event.check_name)
    code = current_code_version(wh.settings.dbt_project_dir)
    code_versions = context.assets_def.code_versions_by_key
    code_info = {
        "commit": code.commit,
        "dirty_hash": code.dirty_hash,
        "label": code.label,
        "models": {
            a: code_versions.get(dg.AssetKey.from_user_string(a)) for a in sorted(new_versions)
        },
    }
    pointers = wh.environments.pointers(setup.environment.name)
    outputs = {a: v for a, v in pointers.items() if setup.base_manifest.get(a) != v}
    store = ExperimentStore(wh.root, wh.meta)
    try:
        store.update(
            setup.environment.name,
            lambda record: record_run(
                record,
                run_id=context.run_id,
                rebuilt={a: v.version_id for a, v in new_versions.items()},
                reused={a: v.version_id for a, v in setup.reused_versions.items()},
                config=setup.config.as_dict(),
                code_version=code_info,
                checks=checks,
                diffs=diffs,
                outputs=outputs,
            ),
        )
    except UnknownExperiment:
        context.log.info(f"sandbox {setup.environment.name!r} has no experiment record to update")
