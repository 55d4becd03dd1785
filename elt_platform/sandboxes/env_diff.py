"""Diff two environments or releases asset by asset (`elt diff`), and record the result on the
sandbox it describes: as Dagster observations of its partition and in its experiment record."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from elt_platform.access.masking import RelationSql, sandbox_relation_sql
from elt_platform.environments import EnvironmentKind, environment_from_name
from elt_platform.errors import UnknownAsset, UnknownExperiment
from elt_platform.project.contracts.from_dbt import load_sources
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.project.keys import asset_keys_columns
from elt_platform.project.manifest import load_manifest
from elt_platform.sandboxes.diff_markdown import diff_markdown
from elt_platform.sandboxes.experiment import ExperimentStore
from elt_platform.sandboxes.row_diff import TableDiff, diff_relations
from elt_platform.settings import Settings
from elt_platform.store.versions import Version
from elt_platform.store.warehouse import Warehouse

_RELEASE_ID = re.compile(r"r\d{4,}-[0-9a-f]{8}")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: an environment's pointers or a release's manifest."""

    label: str
    pointers: dict[str, str]
    is_sandbox: bool = False
    environment: str | None = None


@dataclass
class EnvironmentDiff:
    left: str
    right: str
    masked: bool
    tables: list[TableDiff] = field(default_factory=list)

    @property
    def changed(self) -> list[TableDiff]:
        return [t for t in self.tables if not t.identical]

    def summary(self) -> dict[str, dict[str, Any]]:
        return {t.asset: t.summary() for t in self.tables}


def resolve_side(wh: Warehouse, spec: str) -> Side:
    """`prod`, `staging`, a sandbox name, or a release id (`r0003-1a2b3c4d`)."""
    if _RELEASE_ID.fullmatch(spec or ""):
        return Side(spec, dict(wh.releases.get(spec).manifest))
    env = environment_from_name(spec)
    pointers = wh.environments.pointers(env.name)  # unknown environment -> clear error
    return Side(env.name, pointers, env.kind is EnvironmentKind.SANDBOX, env.name)


def primary_keys(settings: Settings) -> dict[str, list[str]]:
    """Keys of raw assets and dbt models (meta.primary_key or a unique test)."""
    manifest = load_manifest(prepare_manifest(load_dbt_project(settings)))
    return asset_keys_columns(load_sources(settings), manifest)


def diff_sides(
    wh: Warehouse,
    left: Side,
    right: Side,
    *,
    keys: dict[str, list[str]],
    assets: list[str] | None = None,
    examples: int = 3,
    duckdb_config: dict[str, str] | None = None,
) -> EnvironmentDiff:
    """Diff every asset of either side (or `assets`). When a sandbox is involved both sides are
    read masked, so the comparison is like for like and shows no raw PII."""
    universe = sorted(set(left.pointers) | set(right.pointers))
    if assets:
        unknown = [a for a in assets if a not in universe]
        if unknown:
            raise UnknownAsset(f"neither {left.label} nor {right.label} has asset {unknown[0]!r}")
        universe = [a for a in universe if a in assets]
    masked = left.is_sandbox or right.is_sandbox
    relation = sandbox_relation_sql(wh.meta) if masked else _plain
    result = EnvironmentDiff(left.label, right.label, masked)
    con = duckdb.connect(config=duckdb_config or {})  # the installation's memory limit
    try:
        con.execute("SET enable_progress_bar = false")  # stdout may carry --json output
        for asset in universe:
            result.tables.append(
                _diff_asset(wh, con, asset, left, right, relation, keys.get(asset), examples)
            )
    finally:
        con.close()
    return result


def _diff_asset(wh, con, asset, left: Side, right: Side, relation: RelationSql, key, examples):
    lv, rv = left.pointers.get(asset), right.pointers.get(asset)
    if lv is None or rv is None:
        version = wh.versions.get(asset, lv or rv)
        only = TableDiff(asset, lv, rv, mode="only_left" if rv is None else "only_right")
        only.rows_left = version.rows if rv is None else 0
        only.rows_right = version.rows if lv is None else 0
        only.added, only.removed = only.rows_right, only.rows_left
        return only
    if lv == rv:
        version = wh.versions.get(asset, lv)
        same = TableDiff(asset, lv, rv, mode="identical", key=list(key or []))
        same.rows_left = same.rows_right = version.rows
        return same
    lver, rver = wh.versions.get(asset, lv), wh.versions.get(asset, rv)
    return diff_relations(
        con,
        asset,
        relation(asset, lver),
        relation(asset, rver),
        key=key,
        left_version=lv,
        right_version=rv,
        examples=examples,
    )


def record_diff(wh: Warehouse, result: EnvironmentDiff, sandbox: str, instance=None) -> None:
    """Store the summary in the sandbox's experiment record and, with an instance, as an
    observation of each compared asset in the sandbox's partition (visible in the UI)."""
    summary = result.summary()
    with contextlib.suppress(UnknownExperiment):
        ExperimentStore(wh.root, wh.meta).update(
            sandbox,
            lambda record: record.setdefault("diffs", {}).update(
                {f"{result.left}..{result.right}": summary}
            ),
        )
    if instance is None:
        return
    import dagster as dg

    for table in result.tables:
        if table.mode == "identical":
            continue
        metadata = {
            "diff_against": result.left,
            "diff": dg.MetadataValue.json(table.summary()),
            "diff_markdown": dg.MetadataValue.md(diff_markdown(table, result.left, sandbox)),
            "diff_rows_added": table.added,
            "diff_rows_removed": table.removed,
        }
        if table.changed is not None:
            metadata["diff_rows_changed"] = table.changed
        instance.report_runless_asset_event(
            dg.AssetObservation(
                asset_key=dg.AssetKey.from_user_string(table.asset),
                partition=sandbox,
                metadata=metadata,
            )
        )


def _plain(asset: str, version: Version) -> str:
    return f"SELECT * FROM {version.scan_sql}"
