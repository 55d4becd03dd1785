"""Version lineage: which stored versions fed which, for an environment or a release.

Every committed version records the versions of its inputs (`versions.inputs_json`), so the edges
of a release are read from the metadata store, not recomputed from today's code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from elt_platform.store.warehouse import Warehouse


@dataclass(frozen=True, order=True)
class VersionEdge:
    upstream: str
    upstream_version: str
    asset: str
    version: str


def version_edges(pointers: dict[str, str], wh: Warehouse) -> list[VersionEdge]:
    """Edges into every version of `pointers` (asset -> version) from the versions that built it."""
    edges = []
    with wh.meta.read() as con:
        for asset, version_id in sorted(pointers.items()):
            row = con.execute(
                "SELECT inputs_json FROM versions WHERE asset = ? AND version_id = ?",
                (asset, version_id),
            ).fetchone()
            for upstream, upstream_version in json.loads(row[0] if row else "{}").items():
                edges.append(VersionEdge(upstream, upstream_version, asset, version_id))
    return sorted(edges)


def release_lineage(wh: Warehouse, release_id: str) -> list[VersionEdge]:
    return version_edges(wh.releases.get(release_id).manifest, wh)


def environment_lineage(wh: Warehouse, environment: str) -> list[VersionEdge]:
    return version_edges(wh.environments.pointers(environment), wh)
