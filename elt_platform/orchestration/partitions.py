"""Environments as Dagster partitions: the partitions definition, the environment of a running
step (from its partition key, at run time), and keeping partitions equal to the environments in
the metadata store."""

from __future__ import annotations

import dagster as dg

from elt_platform.environments import CORE_ENVIRONMENTS, Environment, environment_from_name
from elt_platform.errors import InvalidEnvironmentName

environment_partitions = dg.DynamicPartitionsDefinition(name="environment")


def resolve_environment(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> Environment:
    """The environment of the running step, from its partition key."""
    key = step_partition(context)
    if key is None:
        raise InvalidEnvironmentName(
            "this asset is partitioned by environment but the run has no partition key",
            hint="select an environment partition (e.g. staging) when launching the run",
        )
    return environment_from_name(key)


PARTITION_TAG = "dagster/partition"


def step_partition(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str | None:
    """The step's partition key, read from the run's tags when the partition no longer exists
    (Dagster's accessor raises once the environments sensor removed an ad-hoc partition)."""
    try:
        return context.partition_key if context.has_partition_key else None
    except dg.DagsterInvalidInvocationError:
        return context.run.tags.get(PARTITION_TAG)


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


def partition_requests(
    existing: set[str], environments: list[str]
) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
    """Requests that make the partitions equal `environments` (plus prod and staging)."""
    add = [n for n in dict.fromkeys([*CORE_ENVIRONMENTS, *environments]) if n not in existing]
    remove = [n for n in existing if n not in environments and n not in CORE_ENVIRONMENTS]
    requests: list = []
    if add:
        requests.append(environment_partitions.build_add_request(add))
    if remove:
        requests.append(environment_partitions.build_delete_request(sorted(remove)))
    return requests


def remove_environment_partition(instance: dg.DagsterInstance, name: str) -> None:
    """Forget a dropped environment's partition (its run history stays)."""
    if instance.has_dynamic_partition(environment_partitions.name, name):
        instance.delete_dynamic_partition(environment_partitions.name, name)
