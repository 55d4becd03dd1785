"""What a dbt run needs to know about its environment: config (flags, vars), masking, which
selected models to recompute and which keep their build (the one planner, in every environment),
and the reused builds it records.

`dbt/runner.py` calls `prepare_dbt_run` before dbt starts and `finish_dbt_run` after the models
are exported, so the runner stays about running dbt. Domains that want to react to a finished run
(sandboxes diff and record their experiments) register a `RunObserver`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import dagster as dg

from elt_platform.access.facade import GovernedWarehouse
from elt_platform.access.masking import RelationSql, sandbox_relation_sql
from elt_platform.access.masking_policy import MASKED_PARAM, save_masking_policy
from elt_platform.access.sensitivity import masking_rules
from elt_platform.builds.non_breaking import non_breaking_check
from elt_platform.builds.planner import VARS_PARAM, RebuildPlan, model_var_values, plan_environment
from elt_platform.dbt.dbt_tests import to_check_result
from elt_platform.environments import Environment, EnvironmentKind
from elt_platform.orchestration.metadata import version_metadata
from elt_platform.orchestration.runs import failed_runs
from elt_platform.project.dbt_project import load_dbt_project
from elt_platform.project.environment_config import EnvironmentConfig
from elt_platform.project.manifest import Manifest
from elt_platform.project.project_file import environment_config
from elt_platform.settings import Settings
from elt_platform.store.builds import SKIPPED
from elt_platform.store.catalog import default_relation_sql
from elt_platform.store.versions import Version


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
    # Selected models that keep a build: the version, and (once recorded) this run's reuse build.
    reused_versions: dict[str, Version] = field(default_factory=dict)

    @property
    def is_sandbox(self) -> bool:
        return self.environment.kind is EnvironmentKind.SANDBOX

    @property
    def to_build(self) -> set[str]:
        """Selected models dbt must build (those the plan recomputes)."""
        return self.selected - set(self.reused_versions)

    def dbt_args(self, platform_vars: str, manifest: Manifest) -> list[str]:
        """`--vars` with the environment's flags and vars (platform vars win), and the exact
        selection: the models to build plus every test (data or unit) that reads one of them.
        Indirect selection is off, because dbt's would drop a test reading a rebuilt model and a
        reused one (excluding a model excludes its tests); models that keep their build are
        excluded in case the Dagster subset named them."""
        merged = {**self.config.dbt_vars, **json.loads(platform_vars)}
        build = sorted(self.node_names[a] for a in self.to_build if a in self.node_names)
        tests = sorted(g.name for g in manifest.test_gates() if set(g.assets) & self.to_build)
        args = ["--vars", json.dumps(merged, sort_keys=True), "--indirect-selection", "empty"]
        args += ["--select", " ".join([*build, *tests])]
        excluded = sorted(self.node_names[a] for a in self.reused_versions if a in self.node_names)
        if excluded:
            args += ["--exclude", " ".join(excluded)]
        return args

    def params(self, asset: str) -> dict[str, Any]:
        """Recorded on each build: the vars it saw, and whether inputs were masked."""
        params: dict[str, Any] = {VARS_PARAM: self.model_vars.get(asset, {})}
        if self.is_sandbox:
            params[MASKED_PARAM] = True
        return params

    def metadata(self, asset: str) -> dict[str, Any]:
        out: dict[str, Any] = {"environment_config": dg.MetadataValue.json(self.config.as_dict())}
        if self.plan is not None and asset in self.plan.decisions:
            out["rebuild_reason"] = self.plan.decisions[asset].reason
        if self.is_sandbox:
            out["pii_masked_inputs"] = True
        return out

    def record_reuse(self, wh: GovernedWarehouse, run_id: str) -> None:
        """Record, for each reused model, a build of this run that reuses the planned build (its
        checks carried over)."""
        assert self.plan is not None
        builds = self.plan.reuse_builds
        for asset, version in list(self.reused_versions.items()):
            origin = wh.builds.get(builds[asset])
            assert origin is not None
            reused = wh.builds.reuse(origin, environment=self.environment.name, run_id=run_id)
            self.reused_versions[asset] = dataclasses.replace(version, build_id=reused.build_id)

    def reused_outputs(self, context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
        """Outputs for selected models that were not recomputed, in dependency order."""
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
                    "reused_build": self.plan.reuse_builds.get(asset, "") if self.plan else "",
                    "reused_from": (
                        f"build {self.plan.reuse_builds.get(asset, '') if self.plan else ''}, "
                        f"version {version.version_id}"
                    ),
                    "resolves_to_release": self.base_release or "-",
                },
                data_version=dg.DataVersion(version.version_id),
            )

    def carried_check_results(
        self, context: dg.AssetExecutionContext, wh: GovernedWarehouse, fresh: set[tuple]
    ) -> Iterator[dg.AssetCheckResult]:
        """The checks each reused build carries over (so the partition shows them in this run),
        except those this run evaluated again."""
        selected = set(context.selected_asset_check_keys)
        for asset, version in self.reused_versions.items():
            key = dg.AssetKey.from_user_string(asset)
            for name, outcome in wh.builds.checks(version.build_id or "").items():
                if (asset, name) in fresh or outcome.status == SKIPPED:
                    continue
                if dg.AssetCheckKey(key, name) in selected:
                    yield to_check_result(key, outcome, carried_over_from=outcome.carried_from)


def prepare_dbt_run(
    context: dg.AssetExecutionContext,
    wh: GovernedWarehouse,
    settings: Settings,
    env: Environment,
    manifest: Manifest,
) -> DbtRunSetup:
    """Resolve config, tag the run, refresh the masking policy and plan the run."""
    record = wh.environments.get(env.name)
    config = environment_config(settings, env.name, record.config)
    context.instance.add_run_tags(context.run_id, config.tags())
    pii = masking_rules(settings)
    if pii is not None:
        save_masking_policy(wh.meta, pii)
    setup = DbtRunSetup(
        environment=env,
        config=config,
        relation_sql=default_relation_sql,
        selected={k.to_user_string() for k in context.selected_asset_keys},
        node_names=manifest.node_names(),
        model_vars=model_var_values(manifest, config.dbt_vars),
    )
    if setup.is_sandbox:
        setup.relation_sql = sandbox_relation_sql(wh.meta)
        setup.base_release = record.base_release
        if record.base_release:
            setup.base_manifest = wh.releases.get(record.base_release).manifest
    assets_def = context.assets_def
    deps = {
        k.to_user_string(): [d.to_user_string() for d in assets_def.asset_deps.get(k, set())]
        for k in context.selected_asset_keys
    }
    setup.plan = plan_environment(
        wh,
        env.name,
        sorted(setup.selected),
        deps=deps,
        code_versions={k.to_user_string(): v for k, v in assets_def.code_versions_by_key.items()},
        var_values=setup.model_vars,
        failed_runs=lambda run_ids: failed_runs(context.instance, run_ids),
        non_breaking=non_breaking_check(wh.versions, load_dbt_project(settings), manifest),
    )
    setup.reused_versions = {a: wh.versions.get(a, v) for a, v in setup.plan.reuse.items()}
    for asset in setup.plan.rebuild:
        context.log.info(f"recomputing {asset}: {setup.plan.decisions[asset].reason}")
    return setup


class RunObserver(Protocol):
    """Called after a dbt run exported its versions; returns extra metadata per asset."""

    def after_dbt_run(
        self,
        context: dg.AssetExecutionContext,
        wh: GovernedWarehouse,
        setup: DbtRunSetup,
        manifest: Manifest,
        new_versions: Mapping[str, Version],
        events: list,
    ) -> dict[str, dict[str, Any]]: ...


def finish_dbt_run(
    context: dg.AssetExecutionContext,
    wh: GovernedWarehouse,
    setup: DbtRunSetup,
    manifest: Manifest,
    new_versions: Mapping[str, Version],
    events: list,
    observers: tuple[RunObserver, ...] = (),
) -> dict[str, dict[str, Any]]:
    """Let observers add metadata to the new versions' materializations."""
    extra = {asset: setup.metadata(asset) for asset in new_versions}
    for observer in observers:
        for asset, more in observer.after_dbt_run(
            context, wh, setup, manifest, new_versions, events
        ).items():
            extra.setdefault(asset, {}).update(more)
    return extra
