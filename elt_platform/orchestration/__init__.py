"""Dagster glue below the domains: environment partitions, the warehouse resource, the instance
and shared names."""
