"""What a dbt run needs to know about its environment: config (flags, vars), masking, and, in a
sandbox, which selected models to rebuild and how the rebuilt ones differ from the release.

`dbt/runner.py` calls `prepare_dbt_run` before dbt starts and `finish_dbt_run` after the models
are exported, so the runner stays about running dbt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import duckdb

from elt_platform.environments import Environment, EnvironmentKind
from elt_platform.errors import UnknownExperiment
from elt_platform.sandboxes.config import EnvironmentConfig, environment_config
from elt_platform.sandboxes.diff import diff_relations
from elt_platform.sandboxes.experiment import ExperimentStore, record_run
from elt_platform.sandboxes.keys import model_keys
from elt_platform.sandboxes.masking import RelationSql, sandbox_relation_sql
from elt_platform.sandboxes.pii import MASKED_PARAM, pii_columns_from_manifest, save_policy
from elt_platform.sandboxes.selection import (
    VARS_PARAM,
    Lineage,
    RebuildPlan,
    plan_rebuild,
    record_lineage,
    referenced_vars,
)
from elt_platform.store.versions import Version
from elt_platform.versioning import version_metadata


def plain_relation_sql(asset: str, version: Version) -> str:
    return f"SELECT * FROM {version.scan_sql}"


@dataclass
class DbtRunSetup:
    environment: Environment
    config: EnvironmentConfig
    relation_sql: RelationSql
    base_release: str | None = None
    base_manifest: dict[str, str] = field(default_factory=dict)
    plan: RebuildPlan | None = None
    selected: set[str] = field(default_factory=set)
    node_names: dict[str, str] = field(default_factory=dict)
    model_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    reused_versions: dict[str, Version] = field(default_factory=dict)

    @property
    def is_sandbox(self) -> bool:
        return self.environment.kind is EnvironmentKind.SANDBOX

    @property
    def to_build(self) -> set[str]:
        """Selected models dbt must build (in a sandbox: only those the plan rebuilds)."""
        return self.selected - set(self.reused_versions)

    def dbt_args(self, platform_vars: str) -> list[str]:
        """`--vars` with the environment's flags and vars (platform vars win) and `--exclude`
        for selected models that keep resolving to existing versions."""
        merged = {**self.config.dbt_vars, **json.loads(platform_vars)}
        args = ["--vars", json.dumps(merged, sort_keys=True)]
        excluded = sorted(self.node_names[a] for a in self.reused_versions if a in self.node_names)
        if excluded:
            args += ["--exclude", " ".join(excluded)]
        return args

    def params(self, asset: str) -> dict[str, Any]:
        """Recorded on each exported version: the vars it saw, and whether inputs were masked."""
        params: dict[str, Any] = {VARS_PARAM: self.model_vars.get(asset, {})}
        if self.is_sandbox:
            params[MASKED_PARAM] = True
        return params

    def metadata(self, asset: str) -> dict[str, Any]:
        out: dict[str, Any] = {"environment_config": dg.MetadataValue.json(self.config.as_dict())}
        if self.plan is not None and asset in self.plan.decisions:
            out["rebuild_reason"] = self.plan.decisions[asset].reason
            out["pii_masked_inputs"] = True
        return out

    def reused_outputs(self, context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
        """Outputs for selected models that were not rebuilt (they resolve to existing versions),
        in dependency order."""
        order = list(self.plan.decisions) if self.plan is not None else []
        for asset in sorted(self.reused_versions, key=order.index):
            version = self.reused_versions[asset]
            key = dg.AssetKey.from_user_string(asset)
            yield dg.Output(
                value=None,
                output_name=context.assets_def.get_output_name_for_asset_key(key),
                metadata={
                    **version_metadata(version, self.environment.name),
                    **self.metadata(asset),
                    "rebuilt": False,
                    "resolves_to_release": self.base_release or "-",
                },
                data_version=dg.DataVersion(version.version_id),
            )


def prepare_dbt_run(
    context: dg.AssetExecutionContext,
    wh,
    env: Environment,
    manifest: Mapping[str, Any],
    translator,
    pointers: Mapping[str, Version],
) -> DbtRunSetup:
    """Resolve config, tag the run, refresh the masking policy and (in a sandbox) plan the run."""
    record = wh.environments.get(env.name)
    config = environment_config(env.name, record.config)
    context.instance.add_run_tags(context.run_id, config.tags())
    save_policy(
        wh.meta,
        pii_columns_from_manifest(manifest, lambda n: translator.get_asset_key(n).to_user_string()),
    )
    setup = DbtRunSetup(
        environment=env,
        config=config,
        relation_sql=plain_relation_sql,
        selected={k.to_user_string() for k in context.selected_asset_keys},
    )
    for node in manifest["nodes"].values():
        if node["resource_type"] not in {"model", "seed", "snapshot"}:
            continue
        asset = translator.get_asset_key(node).to_user_string()
        setup.node_names[asset] = node["name"]
        used = referenced_vars(node.get("raw_code") or node.get("raw_sql") or "")
        setup.model_vars[asset] = {
            v: config.dbt_vars[v] for v in sorted(used & config.dbt_vars.keys())
        }
    if not setup.is_sandbox:
        return setup
    setup.relation_sql = sandbox_relation_sql(wh.meta)
    setup.base_release = record.base_release
    if record.base_release:
        setup.base_manifest = wh.releases.get(record.base_release).manifest
    assets_def = context.assets_def
    deps = {
        k.to_user_string(): [d.to_user_string() for d in assets_def.asset_deps.get(k, set())]
        for k in context.selected_asset_keys
    }
    setup.plan = plan_rebuild(
        wh.meta,
        sorted(setup.selected),
        environment=env.name,
        deps=deps,
        code_versions={k.to_user_string(): v for k, v in assets_def.code_versions_by_key.items()},
        var_values=setup.model_vars,
        pointers={a: v.version_id for a, v in pointers.items()},
        base=setup.base_manifest,
    )
    setup.reused_versions = {a: wh.versions.get(a, v) for a, v in setup.plan.reuse.items()}
    for asset in setup.plan.rebuild:
        context.log.info(f"rebuilding {asset}: {setup.plan.decisions[asset].reason}")
    return setup


def finish_dbt_run(
    context: dg.AssetExecutionContext,
    wh,
    setup: DbtRunSetup,
    manifest: Mapping[str, Any],
    new_versions: Mapping[str, Version],
    events: list,
) -> dict[str, dict[str, Any]]:
    """In a sandbox: diff each rebuilt model against its release version and fold the run into
    the experiment record. Returns extra materialization metadata per asset."""
    extra = {asset: setup.metadata(asset) for asset in new_versions}
    if not setup.is_sandbox:
        return extra
    _remember_lineage(context, wh, setup, new_versions)
    keys = model_keys(manifest)
    # A fresh relation: it must see the versions just committed as already masked.
    relation_sql = sandbox_relation_sql(wh.meta)
    diffs: dict[str, dict[str, Any]] = {}
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        for asset, version in new_versions.items():
            base_id = setup.base_manifest.get(asset)
            if base_id is None:
                continue
            if base_id == version.version_id:
                diffs[asset] = {"identical": True, "left_version": base_id}
            else:
                base = wh.versions.get(asset, base_id)
                result = diff_relations(
                    con, asset, relation_sql(asset, base), relation_sql(asset, version),
                    key=keys.get(asset),
                    left_version=base_id, right_version=version.version_id,
                )  # fmt: skip
                diffs[asset] = result.summary()
            extra[asset]["diff_vs_release"] = dg.MetadataValue.json(diffs[asset])
            for field_name in ("added", "removed", "changed"):
                value = diffs[asset].get(field_name, 0)
                if isinstance(value, int):
                    extra[asset][f"diff_rows_{field_name}"] = value
    finally:
        con.close()
    _record(context, wh, setup, new_versions, events, diffs)
    return extra


def _remember_lineage(context, wh, setup: DbtRunSetup, new_versions) -> None:
    """Record what each version was built from in this sandbox, so the next plan recognises a
    rebuild whose content matched an existing version (e.g. a mart identical to prod's)."""
    pointers = wh.environments.pointers(setup.environment.name)
    code_versions = context.assets_def.code_versions_by_key
    built = {}
    for asset, version in new_versions.items():
        key = dg.AssetKey.from_user_string(asset)
        inputs = {}
        for dep in context.assets_def.asset_deps.get(key, set()):
            name = dep.to_user_string()
            resolved = new_versions[name].version_id if name in new_versions else pointers.get(name)
            if resolved is not None:
                inputs[name] = resolved
        built[(asset, version.version_id)] = Lineage(
            code_versions.get(key), inputs, setup.params(asset)
        )
    record_lineage(wh.meta, setup.environment.name, built)


def _record(context, wh, setup: DbtRunSetup, new_versions, events, diffs) -> None:
    from elt_platform.codeversion import current_code_version

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
    code = current_code_version()
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
                record, run_id=context.run_id,
                rebuilt={a: v.version_id for a, v in new_versions.items()},
                reused={a: v.version_id for a, v in setup.reused_versions.items()},
                config=setup.config.as_dict(), code_version=code_info, checks=checks,
                diffs=diffs, outputs=outputs,
            ),
        )  # fmt: skip
    except UnknownExperiment:
        context.log.info(f"sandbox {setup.environment.name!r} has no experiment record to update")
