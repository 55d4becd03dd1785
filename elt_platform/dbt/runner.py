"""Run dbt for one environment: mount upstream versions as views in the environment's scratch
DuckDB, run `dbt build`, export every built model to a new version, commit pointers at once."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from elt_platform.access.facade import GovernedWarehouse
from elt_platform.checks.gates import evaluate_gates, score, to_check_result
from elt_platform.dbt.environment_run import RunObserver, finish_dbt_run, prepare_dbt_run
from elt_platform.errors import MissingSourceData
from elt_platform.orchestration.metadata import version_metadata
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.project.contracts.model import Contract
from elt_platform.project.dbt_project import DbtProjectConfig, dbt_vars
from elt_platform.project.manifest import Manifest
from elt_platform.sqlident import quote_ident
from elt_platform.store.catalog import RelationSql, default_relation_sql, relation_for_asset
from elt_platform.store.versions import Version


def mount_upstream(
    con: duckdb.DuckDBPyConnection,
    pointers: Mapping[str, Version],
    relations: Mapping[str, tuple[str, str]],
    skip: set[str],
    relation_sql: RelationSql = default_relation_sql,
) -> None:
    """Create views in the scratch database for every pointed version dbt will not rebuild
    (through `relation_sql`, which masks PII in sandboxes)."""
    existing = {
        (r[0], r[1]): r[2]
        for r in con.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables"
        ).fetchall()
    }
    for asset, version in pointers.items():
        if asset in skip:
            continue
        schema, name = relations.get(asset) or relation_for_asset(asset)
        rel = f"{quote_ident(schema)}.{quote_ident(name)}"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        if existing.get((schema, name)) == "BASE TABLE":
            con.execute(f"DROP TABLE {rel}")
        con.execute(f"CREATE OR REPLACE VIEW {rel} AS {relation_sql(asset, version)}")


def check_inputs_available(
    context: dg.AssetExecutionContext, pointers: Mapping[str, Version]
) -> None:
    """Fail before dbt starts if a selected model's upstream has no version in the environment."""
    selected = context.selected_asset_keys
    missing: dict[str, list[str]] = {}
    for key in selected:
        for dep in context.assets_def.asset_deps.get(key, set()):
            dep_name = dep.to_user_string()
            if dep not in selected and dep_name not in pointers:
                missing.setdefault(dep_name, []).append(key.to_user_string())
    if missing:
        first, needed_by = sorted(missing.items())[0]
        raise MissingSourceData(
            f"{needed_by[0]} needs {first}, which has no version in environment "
            f"{context.partition_key!r}",
            hint=f"materialize {first} in this environment first (or select it in the same run)",
        )


def run_dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    cfg: DbtProjectConfig,
    manifest: Manifest,
    contracts: Mapping[str, Contract] | None = None,
    observers: tuple[RunObserver, ...] = (),
) -> Iterator[dg.Output | dg.AssetCheckResult | dg.AssetObservation]:
    env = warehouse.writable_environment(context)
    wh = warehouse.warehouse
    pointers = wh.resolve(env.name)
    check_inputs_available(context, pointers)
    relations = manifest.relations()
    # Flags/vars, masking and (in a sandbox) which selected models keep their release versions.
    setup = prepare_dbt_run(context, wh, warehouse.settings, env, manifest, pointers)
    pointers = {**pointers, **setup.reused_versions}
    scratch = wh.scratch_path(env.name)
    con = duckdb.connect(str(scratch))
    try:
        mount_upstream(
            con, pointers, relations, skip=setup.to_build, relation_sql=setup.relation_sql
        )
    finally:
        con.close()

    target_path = cfg.state_dir / "runs" / context.run_id[:8] / context.op_handle.name
    cache = cfg.partial_parse_cache(env.name)
    if cache.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copy(cache, target_path / "partial_parse.msgpack")
    started = time.perf_counter()
    invocation = None
    if setup.to_build:
        invocation = dbt.cli(
            ["build", *setup.dbt_args(dbt_vars(scratch, env.name))],
            context=context,
            target_path=target_path,
            raise_on_error=False,
        )
    events = list(invocation.stream()) if invocation is not None else []
    dbt_seconds = time.perf_counter() - started
    try:
        new_versions = _export_models(
            context, wh, env.name, scratch, events, relations, pointers, setup.params
        )
        wh.commit_pointers(
            env.name, {**setup.reused_versions, **new_versions}, run_id=context.run_id
        )
    finally:
        parsed = target_path / "partial_parse.msgpack"
        if parsed.exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(parsed, cache)
        shutil.rmtree(target_path, ignore_errors=True)

    contracts = contracts or {}
    gate_results: dict[str, list[dg.AssetCheckResult]] = {}
    for name, version in new_versions.items():
        if name in contracts and contracts[name].gated:
            key = dg.AssetKey.from_user_string(name)
            outcomes = evaluate_gates(wh, version, contracts[name])
            gate_results[name] = [to_check_result(key, o) for o in outcomes]
    extra = finish_dbt_run(context, wh, setup, manifest, new_versions, events, observers)
    dbt_checks: dict[str, list[dg.AssetCheckResult]] = {}
    for event in events:
        if isinstance(event, dg.AssetCheckResult) and event.asset_key is not None:
            dbt_checks.setdefault(event.asset_key.to_user_string(), []).append(event)

    # Reused models first: rebuilt ones may depend on them, never the reverse (topological order).
    yield from setup.reused_outputs(context)
    for event in events:
        if isinstance(event, dg.Output):
            key = context.asset_key_for_output(event.output_name).to_user_string()
            version = new_versions[key]
            checks = dbt_checks.get(key, []) + gate_results.get(key, [])
            yield dg.Output(
                value=None,
                output_name=event.output_name,
                metadata={
                    **event.metadata,
                    **version_metadata(version, env.name),
                    "quality_score": dg.MetadataValue.float(score(checks, version.rows)),
                    "dbt_build_seconds": round(dbt_seconds, 3),
                    **extra.get(key, {}),
                },
                data_version=dg.DataVersion(version.version_id),
            )
        else:
            yield event
    for results in gate_results.values():
        yield from results
    if invocation is not None and not invocation.is_successful():
        raise dg.Failure(
            description=f"dbt build failed in environment {env.name!r}",
            metadata={"dbt_error": str(invocation.get_error() or "")[:4000]},
        )


def _export_models(
    context: dg.AssetExecutionContext,
    wh: GovernedWarehouse,
    environment: str,
    scratch: Path,
    events: list,
    relations: Mapping[str, tuple[str, str]],
    pointers: Mapping[str, Version],
    params_for=lambda asset: {},
) -> dict[str, Version]:
    """Export each model dbt built to an immutable version; replace the table by a view on it."""
    built = [
        context.asset_key_for_output(e.output_name) for e in events if isinstance(e, dg.Output)
    ]
    versions: dict[str, Version] = {}
    con = duckdb.connect(str(scratch))
    try:
        for key in built:
            name = key.to_user_string()
            schema, ident = relations.get(name) or relation_for_asset(name)
            rel = f"{quote_ident(schema)}.{quote_ident(ident)}"
            inputs = {}
            for dep in context.assets_def.asset_deps.get(key, set()):
                dep_name = dep.to_user_string()
                dep_version = versions.get(dep_name) or pointers.get(dep_name)
                if dep_version is not None:
                    inputs[dep_name] = dep_version.version_id
            version = wh.versions.write_query(
                con,
                name,
                f"SELECT * FROM {rel}",
                environment=environment,
                run_id=context.run_id,
                code_version=context.assets_def.code_versions_by_key.get(key),
                inputs=inputs,
                params={"partition": environment, **params_for(name)},
            )
            con.execute(f"DROP TABLE IF EXISTS {rel}")
            con.execute(f"CREATE VIEW {rel} AS SELECT * FROM {version.scan_sql}")
            versions[name] = version
    finally:
        con.close()
    return versions
