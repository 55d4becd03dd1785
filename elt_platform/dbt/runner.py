"""Run dbt for one environment: plan what to recompute, make the environment's scratch DuckDB hold
what dbt must see (`dbt/scratch.py`), run `dbt build`, export every built node to a version and
record its build with every gate's outcome, record reused builds, commit pointers at once."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from elt_platform.access.facade import GovernedWarehouse
from elt_platform.checks.gates import evaluate_gates, score, to_check_result, to_outcome
from elt_platform.dbt.dbt_tests import (
    extra_check_results,
    first_failure,
    multi_parent_tests_are_checks,
    read_run_results,
    test_outcomes,
)
from elt_platform.dbt.environment_run import (
    DbtRunSetup,
    RunObserver,
    finish_dbt_run,
    prepare_dbt_run,
)
from elt_platform.dbt.scratch import prepare_scratch, record_built
from elt_platform.errors import MissingSourceData
from elt_platform.orchestration.metadata import version_metadata
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.project.compiled_sql import remember_compiled
from elt_platform.project.contracts.model import Contract
from elt_platform.project.dbt_project import DbtProjectConfig, dbt_vars
from elt_platform.project.manifest import STATEFUL, Manifest
from elt_platform.sqlident import quote_ident
from elt_platform.store.builds import CheckOutcome
from elt_platform.store.catalog import relation_for_asset
from elt_platform.store.versions import Version


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
    setup = prepare_dbt_run(context, wh, warehouse.settings, env, manifest)
    pointers = {**pointers, **setup.reused_versions}
    scratch = wh.scratch_path(env.name)
    stateful = {a for a, kind in manifest.materializations().items() if kind in STATEFUL}
    con = duckdb.connect(str(scratch), config=wh.settings.duckdb_config(in_memory=False))
    try:
        report = prepare_scratch(
            con,
            pointers,
            relations,
            rebuild=setup.to_build,
            stateful=stateful,
            relation_sql=setup.relation_sql,
        )
    finally:
        con.close()
    if report.copied:
        context.log.info(f"previous content copied into the scratch for {report.copied}")

    target_path = cfg.state_dir / "runs" / context.run_id[:8] / context.op_handle.name
    cache = cfg.partial_parse_cache(env.name)
    if cache.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copy(cache, target_path / "partial_parse.msgpack")
    started = time.perf_counter()
    invocation = None
    if setup.to_build:
        invocation = dbt.cli(
            ["build", *setup.dbt_args(dbt_vars(scratch, env.name), manifest)],
            context=context,
            target_path=target_path,
            raise_on_error=False,
        )
    with multi_parent_tests_are_checks():
        events = list(invocation.stream()) if invocation is not None else []
    dbt_seconds = time.perf_counter() - started
    # Lineage reads the SQL this run compiled instead of running `dbt compile` again.
    remember_compiled(cfg, target_path / "manifest.json")
    try:
        results = read_run_results(target_path)
        new_versions = _export_models(context, wh, env.name, scratch, events, relations, setup)
        setup.record_reuse(wh, context.run_id)
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
            outcomes = evaluate_gates(wh, version, contracts[name], wh.settings.duckdb_config())
            gate_results[name] = [to_check_result(key, o) for o in outcomes]
    outcomes = test_outcomes(manifest, results)
    _record_checks(wh, setup, new_versions, outcomes, gate_results)
    extra = finish_dbt_run(context, wh, setup, manifest, new_versions, events, observers)
    dbt_checks: dict[str, list[dg.AssetCheckResult]] = {}
    for event in events:
        if isinstance(event, dg.AssetCheckResult) and event.asset_key is not None:
            dbt_checks.setdefault(event.asset_key.to_user_string(), []).append(event)

    # Outputs in the plan's dependency order (Dagster requires it; a reused model may read a
    # rebuilt one when the change was non-breaking for it), then every other event.
    outputs: dict[str, dg.Output] = {}
    for output in setup.reused_outputs(context):
        outputs[context.asset_key_for_output(output.output_name).to_user_string()] = output
    others = []
    for event in events:
        if isinstance(event, dg.Output):
            key = context.asset_key_for_output(event.output_name).to_user_string()
            version = new_versions[key]
            checks = dbt_checks.get(key, []) + gate_results.get(key, [])
            outputs[key] = dg.Output(
                value=None,
                output_name=event.output_name,
                metadata={
                    **event.metadata,
                    **version_metadata(version, env.name),
                    "build_id": version.build_id or "",
                    "rebuilt": True,
                    "quality_score": dg.MetadataValue.float(score(checks, version.rows)),
                    "dbt_build_seconds": round(dbt_seconds, 3),
                    **extra.get(key, {}),
                },
                data_version=dg.DataVersion(version.version_id),
            )
        elif not _is_test_observation(event):  # multi-parent tests are checks (below)
            others.append(event)
    rank = {a: i for i, a in enumerate(setup.plan.decisions if setup.plan else ())}
    for key in sorted(outputs, key=lambda a: rank.get(a, len(rank))):
        yield outputs[key]
    yield from others
    for results_of_asset in gate_results.values():
        yield from results_of_asset
    yield from extra_check_results(manifest, outcomes, context.selected_asset_check_keys)
    fresh = {(a, n) for a, checks in outcomes.items() for n in checks}
    fresh |= {(a, r.check_name) for a, rs in gate_results.items() for r in rs}
    yield from setup.carried_check_results(context, wh, fresh)
    if invocation is not None and not invocation.is_successful():
        cause = first_failure(manifest, results) or str(invocation.get_error() or "")[:500]
        raise dg.Failure(
            description=f"dbt build failed in environment {env.name!r}: {cause}",
            metadata={"dbt_error": str(invocation.get_error() or "")[:4000]},
        )


def _is_test_observation(event) -> bool:
    """dagster-dbt's stand-in for a test it could not attach; its outcome is a check here."""
    if not isinstance(event, dg.AssetObservation):
        return False
    unique_id = (event.metadata or {}).get("unique_id")
    return str(getattr(unique_id, "value", unique_id) or "").startswith("test.")


def _record_checks(
    wh: GovernedWarehouse,
    setup: DbtRunSetup,
    new_versions: Mapping[str, Version],
    outcomes: Mapping[str, Mapping[str, CheckOutcome]],
    gate_results: Mapping[str, list[dg.AssetCheckResult]],
) -> None:
    """Every gate evaluated in this run, on the build of each asset it read (new or reused)."""
    built = {**setup.reused_versions, **new_versions}
    for asset, version in built.items():
        found = dict(outcomes.get(asset, {}))
        for result in gate_results.get(asset, []):
            found[result.check_name or ""] = to_outcome(result)
        if found and version.build_id:
            wh.builds.record_checks(version.build_id, found.values())


def _export_models(
    context: dg.AssetExecutionContext,
    wh: GovernedWarehouse,
    environment: str,
    scratch: Path,
    events: list,
    relations: Mapping[str, tuple[str, str]],
    setup: DbtRunSetup,
) -> dict[str, Version]:
    """Export each node dbt built (view, table, incremental, seed, snapshot) to an immutable
    version and record its build; dbt's relation stays as dbt made it."""
    built = [
        context.asset_key_for_output(e.output_name) for e in events if isinstance(e, dg.Output)
    ]
    pointers = wh.resolve(environment)
    versions: dict[str, Version] = {}
    con = duckdb.connect(str(scratch), config=wh.settings.duckdb_config(in_memory=False))
    try:
        for key in built:
            name = key.to_user_string()
            schema, ident = relations.get(name) or relation_for_asset(name)
            inputs = {}
            for dep in context.assets_def.asset_deps.get(key, set()):
                dep_name = dep.to_user_string()
                dep_version = (
                    versions.get(dep_name)
                    or setup.reused_versions.get(dep_name)
                    or pointers.get(dep_name)
                )
                if dep_version is not None:
                    inputs[dep_name] = dep_version.version_id
            version = wh.versions.write_query(
                con,
                name,
                f"SELECT * FROM {quote_ident(schema)}.{quote_ident(ident)}",
                environment=environment,
                run_id=context.run_id,
                code_version=context.assets_def.code_versions_by_key.get(key),
                inputs=inputs,
                params={"partition": environment, **setup.params(name)},
                masked=setup.is_sandbox,
            )
            record_built(con, name, schema, ident, version.version_id)
            versions[name] = version
    finally:
        con.close()
    return versions
