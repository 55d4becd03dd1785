"""The code location loads as the webserver loads it, and its shape does not change by accident:
every asset, check, job, sensor, schedule and resource is pinned in a snapshot, so an addition or
removal shows up in review (regenerate it deliberately with ELT_UPDATE_SNAPSHOTS=1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from elt_platform.assembly import build_definitions
from elt_platform.settings import load_settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions_shape.json"


def definitions_shape(defs) -> dict:
    repo = defs.get_repository_def()
    repo.load_all_definitions()  # validates every job, op, sensor and schedule together
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": node.partitions_def.name if node.partitions_def else None,
            "owners": sorted(node.owners),
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
        }
    checks = sorted(
        f"{spec.asset_key.to_user_string()}:{spec.name}:{'blocking' if spec.blocking else 'warn'}"
        for assets_def in graph.assets_defs
        for spec in assets_def.check_specs
    )
    return {
        "assets": assets,
        "checks": checks,
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "schedules": {s.name: s.cron_schedule for s in repo.schedule_defs},
        "resources": sorted(defs.resources or {}),
    }


def test_definitions_have_exactly_the_pinned_shape(tmp_path):
    shape = definitions_shape(build_definitions(load_settings({"ELT_HOME": str(tmp_path)})))
    if os.environ.get("ELT_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(shape, indent=2, sort_keys=True) + "\n")
    assert shape == json.loads(SNAPSHOT.read_text())


def test_every_asset_and_check_is_partitioned_by_environment(tmp_path):
    graph = build_definitions(load_settings({"ELT_HOME": str(tmp_path)})).resolve_asset_graph()
    keys = graph.materializable_asset_keys
    assert keys, "no assets"
    assert {graph.get(k).partitions_def.name for k in keys} == {"environment"}
    gates = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("orders", "contract") in gates and ("raw/orders", "volume") in gates
