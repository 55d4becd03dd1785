"""Definitions every installation has whatever its domains: the environments-as-partitions sensor
and the warehouse resource."""

from __future__ import annotations

import dagster as dg

from elt_platform.orchestration.partitions import environment_partitions, partition_requests
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.settings import Settings


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def environment_partitions_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
):
    """Adds a partition for every environment (e.g. a sandbox created from the CLI) and removes
    partitions of dropped sandboxes."""
    names = [r.name for r in warehouse.warehouse.environments.list()]
    existing = set(context.instance.get_dynamic_partitions(environment_partitions.name))
    return dg.SensorResult(dynamic_partitions_requests=partition_requests(existing, names))


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        sensors=[environment_partitions_sensor],
        resources={"warehouse": WarehouseResource.for_settings(settings)},
    )
