"""The code location loads as the webserver loads it, and its shape does not change by accident."""

from __future__ import annotations

from elt_platform.assembly import build_definitions
from elt_platform.settings import load_settings


def test_definitions_load_fully_like_the_webserver_does(tmp_path):
    defs = build_definitions(load_settings({"ELT_HOME": str(tmp_path)}))
    repo = defs.get_repository_def()
    repo.load_all_definitions()  # validates every job, op, sensor and schedule together
    jobs = {j.name for j in repo.get_all_jobs()}
    assert {"build_environment", "promote_release", "rollback_release", "collect_garbage",
            "create_sandbox", "prune_sandboxes", "enforce_retention"} <= jobs  # fmt: skip
    sensors = {s.name for s in repo.sensor_defs}
    assert {"environment_partitions_sensor", "promotion_sensor"} <= sensors
    schedules = {s.name for s in repo.schedule_defs}
    assert "daily_garbage_collection" in schedules
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.materializable_asset_keys}
    assert {"raw/orders", "raw/customers", "raw/products", "raw/payments", "stg_orders",
            "int_orders_enriched", "orders", "customers", "daily_revenue"} <= keys  # fmt: skip
    # Every asset is partitioned by environment; every gate check too.
    for key in graph.materializable_asset_keys:
        assert graph.get(key).partitions_def.name == "environment", key
    gates = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("orders", "contract") in gates and ("raw/orders", "volume") in gates
