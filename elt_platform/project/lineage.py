"""Table and column lineage of the asset graph, with sensitivity propagated along column edges.

Assets and table edges come from the dbt manifest with the asset keys dagster-dbt gives them (the
same graph Dagster shows); raw assets map one-to-one to connector sources of the project file.
Column edges come from the compiled SQL (`column_lineage`): value edges between columns, plus
dataset-level edges (filters, joins, groupings, sorts) into each model's `ROWS`, kept apart so that
they never make a column "derived from" what only filtered its rows. Owner, description,
objective, retention, key and column sensitivity come from the contracts, read from the dbt YAML.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elt_platform.errors import UnknownLineageTarget
from elt_platform.graphs import children_of, closure
from elt_platform.project.column_lineage import ROWS, ColumnEdge, ColumnRef, Schema, model_lineage
from elt_platform.project.compiled_sql import compiled_sql
from elt_platform.project.contracts.from_dbt import contracts_for, load_sources
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.project.manifest import (
    Manifest,
    asset_key,
    declared_columns,
    layer,
    node_meta,
    relation,
)
from elt_platform.project.project_file import load_policies
from elt_platform.settings import Settings
from elt_platform.store.metadata import MetadataStore
from elt_platform.store.versions import VersionStore

PII = "pii"


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str | None = None
    description: str = ""
    sensitivity: str | None = None


@dataclass(frozen=True)
class SourceField:
    """Where a raw column comes from: a field of a connector source (identity mapping for now)."""

    source: str
    connector: str
    location: str
    field: str


@dataclass(frozen=True)
class AssetInfo:
    key: str
    kind: str  # source | model
    layer: str
    relation: tuple[str, str]
    owner: str | None = None
    description: str = ""
    objective: str | None = None
    retention: str | None = None
    sensitivity: str | None = None
    contract_version: str | None = None
    upstream: tuple[str, ...] = ()
    columns: dict[str, ColumnInfo] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()


@dataclass
class LineageGraph:
    assets: dict[str, AssetInfo]
    edges: tuple[ColumnEdge, ...]
    source_fields: dict[ColumnRef, SourceField]
    dataset_edges: tuple[ColumnEdge, ...] = ()
    untraced: dict[str, str] = field(default_factory=dict)  # model -> why it has no column edges

    def __post_init__(self) -> None:
        self._up: dict[ColumnRef, list[ColumnEdge]] = {}
        self._down: dict[ColumnRef, list[ColumnEdge]] = {}
        for e in self.edges:
            self._up.setdefault(e.target, []).append(e)
            self._down.setdefault(e.source, []).append(e)

    def table_edges(self) -> list[tuple[str, str]]:
        return sorted((up, a.key) for a in self.assets.values() for up in a.upstream)

    def downstream_assets(self, asset: str) -> list[str]:
        """Every asset computed (directly or not) from `asset`."""
        children = children_of({a.key: a.upstream for a in self.assets.values()})
        return sorted(closure([asset], lambda a: children.get(a, ())) - {asset})

    def upstream_assets(self, asset: str) -> list[str]:
        return sorted(closure([asset], lambda a: self.assets[a].upstream) - {asset})

    def upstream_edges(self, ref: ColumnRef) -> list[ColumnEdge]:
        return list(self._up.get(ref, ()))

    def downstream_edges(self, ref: ColumnRef) -> list[ColumnEdge]:
        return list(self._down.get(ref, ()))

    def row_edges(self, asset: str) -> list[ColumnEdge]:
        """Input columns that decide which rows `asset` has (filter, join, group_by, sort)."""
        return [e for e in self.dataset_edges if e.target.asset == asset]

    def upstream_columns(self, ref: ColumnRef) -> set[ColumnRef]:
        found = closure([ref], lambda r: [e.source for e in self._up.get(r, ())])
        return found - {ref}

    def downstream_columns(self, ref: ColumnRef) -> set[ColumnRef]:
        found = closure([ref], lambda r: [e.target for e in self._down.get(r, ())])
        return found - {ref}

    def declared_sensitivity(self, ref: ColumnRef) -> str | None:
        asset = self.assets.get(ref.asset)
        info = asset.columns.get(ref.column) if asset else None
        return info.sensitivity if info else None

    def pii_sources(self, ref: ColumnRef) -> list[ColumnRef]:
        """The PII columns `ref` is computed from (itself included when declared PII)."""
        found = [r for r in self.upstream_columns(ref) | {ref} if r.column != ROWS]
        return sorted(r for r in found if self.declared_sensitivity(r) == PII)

    def effective_sensitivity(self, ref: ColumnRef) -> str | None:
        """Declared sensitivity, raised to `pii` when the column is derived from a PII column."""
        return PII if self.pii_sources(ref) else self.declared_sensitivity(ref)

    def resolve(self, target: str) -> tuple[str, str | None]:
        """`ASSET` or `ASSET.COLUMN` -> (asset, column or None); unknown names raise."""
        asset, _, column = target.partition(".")
        if asset not in self.assets:
            raise UnknownLineageTarget(f"unknown asset {asset!r}")
        if column and column not in self.assets[asset].columns:
            raise UnknownLineageTarget(f"asset {asset!r} has no column {column!r}")
        return asset, column or None


def build_graph(
    manifest: Mapping[str, Any],
    compiled: Mapping[str, str],
    *,
    sources: Iterable[Any] = (),
    contracts: Mapping[str, Any] | None = None,
    known_columns: Mapping[str, Mapping[str, str]] | None = None,
    default_sensitivity: str | None = None,
) -> LineageGraph:
    """Assemble the lineage graph from a dbt manifest, compiled SQL per model, connector sources
    (SourceConfig), contracts (asset -> Contract) and fallback schemas of stored versions; a
    column declared nowhere gets the project's `default_sensitivity` (None: unclassified)."""
    contracts = contracts or {}
    known_columns = known_columns or {}
    parsed = Manifest(manifest)
    nodes = dict(parsed.data_nodes())
    keys = {uid: asset_key(n) for uid, n in nodes.items()}
    keys_of = parsed.primary_keys()
    relations = {relation(n): keys[uid] for uid, n in nodes.items()}
    assets: dict[str, AssetInfo] = {}
    for uid, n in nodes.items():
        key = keys[uid]
        deps = (n.get("depends_on") or {}).get("nodes") or []
        declared = {
            c: ColumnInfo(c, d.data_type, d.description, d.meta.get("sensitivity"))
            for c, d in declared_columns(n).items()
        }
        if not declared and key in known_columns:
            declared = {c: ColumnInfo(c, t) for c, t in known_columns[key].items()}
        meta = node_meta(n)
        assets[key] = AssetInfo(
            key=key,
            kind="source" if n["resource_type"] == "source" else "model",
            layer=layer(n),
            relation=relation(n),
            owner=meta.get("owner"),
            description=(n.get("description") or "").strip(),
            objective=meta.get("objective"),
            retention=meta.get("retention"),
            sensitivity=meta.get("sensitivity"),
            upstream=tuple(sorted(keys[d] for d in deps if d in keys)),
            columns=declared,
            primary_key=tuple(keys_of.get(key) or ()),
        )
    source_fields = _connector_sources(assets, sources, known_columns)
    untraced: dict[str, str] = {}
    edges, dataset_edges = _column_edges(
        nodes, keys, relations, compiled, assets, known_columns, untraced
    )
    for key, contract in contracts.items():
        if key in assets:
            assets[key] = _apply_contract(assets[key], contract)
    if default_sensitivity:
        for key, info in assets.items():
            columns = {
                c: i
                if i.sensitivity
                else ColumnInfo(c, i.data_type, i.description, default_sensitivity)
                for c, i in info.columns.items()
            }
            assets[key] = AssetInfo(**{**info.__dict__, "columns": columns})
    return LineageGraph(assets, edges, source_fields, dataset_edges, untraced)


def _connector_sources(
    assets: dict[str, AssetInfo], sources: Iterable[Any], known: Mapping[str, Mapping[str, str]]
) -> dict[ColumnRef, SourceField]:
    """Raw assets come from connector sources; a raw column is the source field of the same name."""
    out: dict[ColumnRef, SourceField] = {}
    for src in sources:
        key = "/".join(src.asset_key)
        if key not in assets:
            cols = {c: ColumnInfo(c, t) for c, t in (known.get(key) or {}).items()}
            assets[key] = AssetInfo(key, "source", "raw", tuple(src.asset_key), columns=cols)
        info = assets[key]
        assets[key] = AssetInfo(
            **{
                **info.__dict__,
                "owner": info.owner or src.owner,
                "description": info.description or src.description,
                "primary_key": info.primary_key or tuple(src.primary_key),
            },
        )
        location = str(src.options.get("path") or src.options.get("url") or src.name)
        for column in assets[key].columns:
            out[ColumnRef(key, column)] = SourceField(src.name, src.connector, location, column)
    return out


def _column_edges(
    nodes: Mapping[str, Mapping[str, Any]],
    keys: Mapping[str, str],
    relations: Mapping[tuple[str, str], str],
    compiled: Mapping[str, str],
    assets: dict[str, AssetInfo],
    known: Mapping[str, Mapping[str, str]],
    untraced: dict[str, str],
) -> tuple[tuple[ColumnEdge, ...], tuple[ColumnEdge, ...]]:
    """Column edges and dataset-level edges of every model, traced in dependency order so a
    model's output columns are known to its children (that is how `select *` over an
    undocumented model still resolves). A relation's columns are the stored version's schema
    when there is one (complete), else what its YAML declares (maybe only some); a traced
    model's are the columns its SQL outputs. A model whose SQL cannot be traced keeps its table
    lineage and gets no column edges (`untraced` says why), rather than failing every reader."""
    schema: Schema = {}
    for key, info in assets.items():
        cols = dict(known.get(key) or {}) or {
            c: (i.data_type or "unknown") for c, i in info.columns.items()
        }
        if cols:
            schema.setdefault(info.relation[0], {})[info.relation[1]] = cols
    edges: list[ColumnEdge] = []
    dataset_edges: list[ColumnEdge] = []
    for uid in _topological([u for u in nodes if u in compiled], nodes):
        key = keys[uid]
        info = assets[key]
        try:
            traced = model_lineage(key, compiled[uid], schema, relations)
        except Exception as exc:  # noqa: BLE001 - any SQL sqlglot cannot trace: table lineage only
            untraced[key] = str(exc).splitlines()[0]
            continue
        edges.extend(traced.edges)
        dataset_edges.extend(traced.dataset_edges)
        columns = {c: info.columns.get(c) or ColumnInfo(c) for c in traced.columns}
        columns.update({c: i for c, i in info.columns.items() if c not in columns})
        assets[key] = AssetInfo(**{**info.__dict__, "columns": columns})
        declared_types = {c: (i.data_type or "unknown") for c, i in columns.items()}
        schema.setdefault(info.relation[0], {})[info.relation[1]] = {
            c: declared_types.get(c, "unknown") for c in traced.columns
        }
    return tuple(edges), tuple(dataset_edges)


def _topological(uids: list[str], nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    wanted, done, order = set(uids), set(), []

    def visit(uid: str) -> None:
        if uid in done:
            return
        done.add(uid)
        for dep in (nodes[uid].get("depends_on") or {}).get("nodes") or []:
            if dep in wanted:
                visit(dep)
        order.append(uid)

    for uid in sorted(uids):
        visit(uid)
    return order


def _apply_contract(info: AssetInfo, contract: Any) -> AssetInfo:
    columns = dict(info.columns)
    for col in contract.columns:
        old = columns.get(col.name) or ColumnInfo(col.name)
        columns[col.name] = ColumnInfo(
            col.name,
            col.type or old.data_type,
            col.description or old.description,
            str(col.sensitivity) if col.sensitivity else old.sensitivity,
        )
    return AssetInfo(
        **{
            **info.__dict__,
            "owner": contract.owner or info.owner,
            "description": contract.description or info.description,
            "objective": contract.objective,
            "retention": contract.retention,
            "contract_version": contract.version,
            "columns": columns,
            "primary_key": tuple(contract.primary_key),
        },
    )


def load_lineage(settings: Settings, *, stored_schemas: bool = True) -> LineageGraph:
    """The lineage graph of an installation: its dbt project, connectors, contracts and (unless
    `stored_schemas` is off) the schemas of stored versions, for assets whose columns are
    declared nowhere."""
    cfg = load_dbt_project(settings)
    manifest = json.loads(prepare_manifest(cfg).read_text())
    known: dict[str, dict[str, str]] = seed_columns(manifest, cfg.project_dir)
    if stored_schemas and settings.has_metadata:
        store = VersionStore(settings.warehouse_dir, MetadataStore(settings.metadata_location))
        for version in store.list():
            known[version.asset] = dict(version.schema)  # newest last, so newest wins
    return build_graph(
        manifest,
        compiled_sql(cfg),
        sources=load_sources(settings),
        contracts=dict(contracts_for(settings)),
        known_columns=known,
        default_sensitivity=_default_sensitivity(settings),
    )


def _default_sensitivity(settings: Settings) -> str | None:
    level = load_policies(settings).defaults.sensitivity
    return str(level) if level else None


def seed_columns(manifest: Mapping[str, Any], project_dir: Path) -> dict[str, dict[str, str]]:
    """asset -> columns of every seed, from its CSV header (types as its YAML declares them),
    so a seed nobody documented still has columns before its first build."""
    out: dict[str, dict[str, str]] = {}
    for _, node in Manifest(manifest).data_nodes(frozenset({"seed"})):
        path = project_dir / node.get("original_file_path", "")
        try:
            with path.open(newline="") as handle:
                header = next(csv.reader(handle), [])
        except OSError:
            continue
        types = (node.get("config") or {}).get("column_types") or {}
        out[asset_key(node)] = {c.strip(): str(types.get(c.strip(), "unknown")) for c in header}
    return out
