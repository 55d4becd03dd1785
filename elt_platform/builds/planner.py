"""The one planner: which assets of an environment a build must recompute, and which keep an
existing build (staging and sandboxes alike; `elt sandbox plan`, `elt build --plan` and the dbt
step of every run call `plan_environment`).

An asset is reused when a candidate build (in a sandbox: its release's build, then its own; in
staging: the one staging serves) was computed by the same code version, from the same input
versions, with the same values of the dbt vars its SQL reads, by a run that did not fail or get
canceled (and, outside sandboxes, not from masked inputs), and whose inputs retention has not
rewritten since (it would keep values computed from removed rows). Anything else is recomputed,
and so is everything downstream of a recomputed asset (dbt's `state:modified+`): its input will
change, unless the upstream's only change is its own code and that change is non-breaking for the
asset (`non_breaking`: it reads none of the columns whose definition changed, decided from column
lineage; `builds/non_breaking.py`). Then the asset keeps its build, now and in later plans (an
input that differs only by such a change is accepted), and the decision says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any, Protocol

from elt_platform.environments import EnvironmentKind, environment_from_name
from elt_platform.project.manifest import Manifest
from elt_platform.store.builds import STALE_INPUTS, Build, BuildStore
from elt_platform.store.pointers import EnvironmentRegistry
from elt_platform.store.releases import ReleaseStore


class BuildRecords(Protocol):
    """What the planner reads: environments, releases and build records (the store, or the
    governed warehouse that checks the caller may read them)."""

    @property
    def environments(self) -> EnvironmentRegistry: ...
    @property
    def releases(self) -> ReleaseStore: ...
    @property
    def builds(self) -> BuildStore: ...


VARS_PARAM = "vars"
# (asset, upstream, upstream's old code version, its new code version, the asset's candidate
# build's inputs) -> why the upstream's change cannot change the asset, or None.
NonBreaking = Callable[[str, str, str, str, Mapping[str, str]], str | None]


@dataclass(frozen=True)
class Decision:
    asset: str
    rebuild: bool
    reason: str
    version_id: str | None = None  # what the asset resolves to when it is not rebuilt
    build_id: str | None = None  # the build it reuses
    code_change_of: str | None = None  # rebuilt only because its code changed since this build


@dataclass(frozen=True)
class RebuildPlan:
    decisions: dict[str, Decision] = field(default_factory=dict)  # in dependency order

    @property
    def rebuild(self) -> list[str]:
        return [a for a, d in self.decisions.items() if d.rebuild]

    @property
    def reuse(self) -> dict[str, str]:
        """asset -> version it keeps."""
        return {
            a: d.version_id for a, d in self.decisions.items() if not d.rebuild and d.version_id
        }

    @property
    def reuse_builds(self) -> dict[str, str]:
        """asset -> build it reuses."""
        return {a: d.build_id for a, d in self.decisions.items() if not d.rebuild and d.build_id}


def model_var_values(manifest: Manifest, dbt_vars: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """asset -> the values of the vars its SQL reads (what a build of it depends on besides code
    and inputs). The one rule for both the plan and the build's record."""
    return {
        asset: {v: dbt_vars[v] for v in sorted(used & dbt_vars.keys())}
        for asset, used in manifest.vars_read_by_asset().items()
    }


def plan_environment(
    store: BuildRecords,
    environment: str,
    assets: Iterable[str],
    *,
    deps: Mapping[str, Iterable[str]],
    code_versions: Mapping[str, str | None],
    var_values: Mapping[str, Mapping[str, Any]],
    failed_runs: Callable[[Iterable[str]], set[str]],
    non_breaking: NonBreaking | None = None,
) -> RebuildPlan:
    """Plan `assets` of `environment` against the builds it could reuse. `failed_runs` names,
    among run ids, those that failed or were canceled (Dagster knows; this layer does not)."""
    env = environment_from_name(environment)
    record = store.environments.get(env.name)
    pointers = store.environments.pointers(env.name)
    served = store.environments.pointer_builds(env.name)
    base: dict[str, str | None] = {}
    if env.kind is EnvironmentKind.SANDBOX and record.base_release:
        base = store.releases.get(record.base_release).builds
    wanted = list(dict.fromkeys(assets))
    candidates: dict[str, list[str]] = {}
    for asset in wanted:
        ids = [base.get(asset), served.get(asset)]
        if served.get(asset) is None and asset in pointers:  # pointer set without a build
            legacy = store.builds.latest(asset, pointers[asset])
            ids.append(legacy.build_id if legacy else None)
        candidates[asset] = list(dict.fromkeys(b for b in ids if b))
    builds = store.builds.many(b for ids in candidates.values() for b in ids)
    origins = {b: store.builds.origin(build) for b, build in builds.items()}
    bad_runs = failed_runs({o.run_id for o in origins.values() if o.run_id})
    sandbox = env.kind is EnvironmentKind.SANDBOX

    def unusable(build: Build) -> str | None:
        origin = origins.get(build.build_id, build)
        if origin.run_id in bad_runs:
            return f"its build's run {origin.run_id} failed or was canceled"
        if origin.masked and not sandbox:
            return "its build was computed on masked data"
        stale = build.params.get(STALE_INPUTS) or origin.params.get(STALE_INPUTS)
        if stale:
            return f"retention removed rows from its input {stale[0]}"
        return None

    return plan_rebuild(
        store.builds,
        wanted,
        deps=deps,
        code_versions=code_versions,
        var_values=var_values,
        pointers=pointers,
        candidates=candidates,
        unusable=unusable,
        non_breaking=non_breaking,
    )


def plan_rebuild(
    builds: BuildStore,
    assets: Iterable[str],
    *,
    deps: Mapping[str, Iterable[str]],
    code_versions: Mapping[str, str | None],
    var_values: Mapping[str, Mapping[str, Any]],
    pointers: Mapping[str, str],
    candidates: Mapping[str, Sequence[str]],
    unusable: Callable[[Build], str | None] = lambda build: None,
    non_breaking: NonBreaking | None = None,
) -> RebuildPlan:
    """Decide rebuild/reuse for `assets` (in dependency order); deps outside `assets` resolve to
    the environment's `pointers`; `candidates` lists, per asset, the builds it may reuse."""
    wanted = list(dict.fromkeys(assets))
    graph = {a: {d for d in deps.get(a, ()) if d in wanted} for a in wanted}
    decisions: dict[str, Decision] = {}
    for asset in TopologicalSorter(graph).static_order():
        decisions[asset] = _decide(
            builds,
            asset,
            list(deps.get(asset, ())),
            decisions,
            code_versions.get(asset),
            dict(var_values.get(asset, {})),
            pointers,
            candidates.get(asset, ()),
            unusable,
            _Tolerance(builds, code_versions, non_breaking) if non_breaking else None,
        )
    return RebuildPlan(decisions)  # in dependency order: outputs must be yielded that way


@dataclass
class _Tolerance:
    """Accepts an upstream change that is non-breaking for the asset being decided."""

    builds: BuildStore
    code_versions: Mapping[str, str | None]
    check: NonBreaking

    def rebuilt(self, asset: str, dep: Decision, candidate: Build) -> str | None:
        """`dep` is recomputed in this plan only because its code changed since the build the
        candidate read."""
        old = self.builds.get(dep.code_change_of or "")
        new_code = self.code_versions.get(dep.asset)
        if old is None or new_code is None or candidate.inputs.get(dep.asset) != old.version_id:
            return None
        return self.check(asset, dep.asset, old.code_version or "", new_code, candidate.inputs)

    def changed(self, asset: str, dep: str, old_id: str, new_id: str, candidate: Build):
        """`dep` now resolves to a version built from the same inputs by other code."""
        old, new = self.builds.latest(dep, old_id), self.builds.latest(dep, new_id)
        if old is None or new is None or old.inputs != new.inputs or not new.code_version:
            return None
        return self.check(asset, dep, old.code_version or "", new.code_version, candidate.inputs)


def _decide(
    builds, asset, asset_deps, decided, code_version, values, pointers, candidates, unusable,
    tolerance=None,
) -> Decision:  # fmt: skip
    rebuilt = sorted(d for d in asset_deps if d in decided and decided[d].rebuild)
    if rebuilt and (tolerance is None or not all(decided[d].code_change_of for d in rebuilt)):
        return Decision(asset, True, f"upstream {rebuilt[0]} is rebuilt")
    inputs = {}
    for dep in asset_deps:
        resolved = decided[dep].version_id if dep in decided else pointers.get(dep)
        if resolved is not None:
            inputs[dep] = resolved
    if not candidates:
        return Decision(
            asset, True, "no version yet" if not rebuilt else f"upstream {rebuilt[0]} is rebuilt"
        )
    if code_version is None:
        return Decision(asset, True, "no code version to compare")
    reasons, code_change_of = [], None
    for build_id in candidates:
        build = builds.get(build_id)
        if build is None:
            reasons.append("build record missing")
            continue
        notes, seen = [], dict(inputs)
        for dep in rebuilt:
            note = tolerance.rebuilt(asset, decided[dep], build)
            if note is None:
                break
            notes.append(note)
            seen[dep] = build.inputs[dep]
        if len(notes) < len(rebuilt):
            reasons.append(f"upstream {rebuilt[len(notes)]} is rebuilt")
            continue
        reason = _mismatch(build, code_version, seen, values, asset, tolerance, notes)
        reason = reason or unusable(build)
        if reason is None:
            why = "unchanged" + "".join(f"; {n}" for n in notes)
            return Decision(asset, False, why, build.version_id, build.build_id)
        if reason == "code changed" and code_change_of is None:
            same = _mismatch(build, build.code_version or "", seen, values, asset, tolerance, [])
            code_change_of = build.build_id if same is None and not unusable(build) else None
        reasons.append(reason)
    return Decision(asset, True, reasons[0], code_change_of=code_change_of)


def _mismatch(
    found: Build,
    code_version: str,
    inputs: dict,
    values: dict,
    asset="",
    tolerance=None,
    notes=None,
) -> str | None:
    if found.code_version != code_version:
        return "code changed"
    for dep in sorted(set(inputs) | set(found.inputs)):
        if inputs.get(dep) != found.inputs.get(dep):
            old, new = found.inputs.get(dep), inputs.get(dep)
            note = (
                tolerance.changed(asset, dep, old, new, found)
                if tolerance is not None and old and new
                else None
            )
            if note is None:
                return f"input {dep} changed"
            if notes is not None:
                notes.append(note)
    recorded = found.params.get(VARS_PARAM) or {}
    for name in sorted(set(values) | set(recorded)):
        if values.get(name) != recorded.get(name):
            return f"var {name} changed"
    return None
