"""Keep the environment partitions equal to the environments in the metadata store."""


import dagster as dg

from elt_platform.environments import CORE_ENVIRONMENTS, environment_partitions
from elt_platform.resources import WarehouseResource


def sync_environment_partitions(instance: dg.DagsterInstance, names: list[str]) -> list[str]:
    """Add missing partitions for `names` (always including prod and staging); return added."""
    wanted = list(dict.fromkeys([*CORE_ENVIRONMENTS, *names]))
    existing = set(instance.get_dynamic_partitions(environment_partitions.name))
    missing = [n for n in wanted if n not in existing]
    for name in missing:
        try:
            instance.add_dynamic_partitions(environment_partitions.name, [name])
        except Exception:  # another process added it concurrently (unique constraint)
            if not instance.has_dynamic_partition(environment_partitions.name, name):
                raise
    return missing


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def environment_partitions_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
):
    """Adds a partition for every environment (e.g. a sandbox created from the CLI) and removes
    partitions of dropped sandboxes."""
    names = [r.name for r in warehouse.warehouse.environments.list()]
    existing = set(context.instance.get_dynamic_partitions(environment_partitions.name))
    add = [n for n in dict.fromkeys([*CORE_ENVIRONMENTS, *names]) if n not in existing]
    remove = [n for n in existing if n not in names and n not in CORE_ENVIRONMENTS]
    requests = []
    if add:
        requests.append(environment_partitions.build_add_request(add))
    if remove:
        requests.append(environment_partitions.build_delete_request(remove))
    return dg.SensorResult(dynamic_partitions_requests=requests)
