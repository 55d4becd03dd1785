"""Version lineage: which stored versions fed which, for an environment or a release, down to the
source datasets the raw versions were extracted from.

Every committed version records the versions of its inputs (`versions.inputs_json`), and every raw
version the source datasets it read (its connector state), so the chain of a release is read
from the metadata store, not recomputed from today's code or configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from elt_platform.connectors.state import ConnectorStateStore
from elt_platform.errors import UnknownLineageTarget
from elt_platform.orchestration.lineage_datasets import DatasetName
from elt_platform.store.warehouse import Warehouse


@dataclass(frozen=True, order=True)
class VersionEdge:
    upstream: str
    upstream_version: str
    asset: str
    version: str


@dataclass
class VersionNode:
    """One version and what it was computed from: input versions, or the source datasets read."""

    asset: str
    version: str
    inputs: list[VersionNode] = field(default_factory=list)
    sources: list[DatasetName] = field(default_factory=list)
    repeated: bool = False  # expanded on another path already


def _inputs(wh: Warehouse, asset: str, version_id: str) -> dict[str, str]:
    with wh.meta.read() as con:
        row = con.execute(
            "SELECT inputs_json FROM versions WHERE asset = ? AND version_id = ?",
            (asset, version_id),
        ).fetchone()
    return json.loads(row[0] if row and row[0] else "{}")


def version_edges(pointers: dict[str, str], wh: Warehouse) -> list[VersionEdge]:
    """Edges into every version of `pointers` (asset -> version) from the versions that built it."""
    edges = []
    for asset, version_id in sorted(pointers.items()):
        for upstream, upstream_version in _inputs(wh, asset, version_id).items():
            edges.append(VersionEdge(upstream, upstream_version, asset, version_id))
    return sorted(edges)


def release_lineage(wh: Warehouse, release_id: str) -> list[VersionEdge]:
    return version_edges(wh.releases.get(release_id).manifest, wh)


def environment_lineage(wh: Warehouse, environment: str) -> list[VersionEdge]:
    return version_edges(wh.environments.pointers(environment), wh)


def upstream_chain(wh: Warehouse, asset: str, version_id: str) -> VersionNode:
    """The full chain behind one version, to the source datasets (shared inputs appear once per
    path; a version reached twice is expanded once)."""
    states = ConnectorStateStore(wh.meta)
    expanded: dict[tuple[str, str], VersionNode] = {}

    def visit(name: str, version: str) -> VersionNode:
        if (name, version) in expanded:
            return VersionNode(name, version, repeated=True)
        node = VersionNode(name, version)
        expanded[(name, version)] = node
        for up, up_version in sorted(_inputs(wh, name, version).items()):
            node.inputs.append(visit(up, up_version))
        saved = states.get(name, version)
        for namespace, dataset in (saved.position.get("datasets") or []) if saved else []:
            node.sources.append(DatasetName(namespace, dataset))
        return node

    return visit(asset, version_id)


def release_chain(wh: Warehouse, release_id: str, asset: str) -> VersionNode:
    """The chain behind `asset`'s version in a release."""
    manifest = wh.releases.get(release_id).manifest
    if asset not in manifest:
        raise UnknownLineageTarget(f"release {release_id} has no version of {asset!r}")
    return upstream_chain(wh, asset, manifest[asset])


def release_dependents(wh: Warehouse, release_id: str, asset: str) -> list[VersionEdge]:
    """Edges, within a release, from `asset`'s version to everything computed from it."""
    edges = release_lineage(wh, release_id)
    found, todo = [], [asset]
    while todo:
        current = todo.pop()
        for e in edges:
            if e.upstream == current and e not in found:
                found.append(e)
                todo.append(e.asset)
    return sorted(found)
