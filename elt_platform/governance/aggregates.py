"""Differentially private aggregate releases: order counts and revenue per customer region and
month, computed from an environment's marts with each customer's contribution bounded, noised,
and published as `dp_<consumer>/<dataset>` after the consumer's privacy budget accepted the spend.

Contribution bounds make the sensitivity finite: every customer keeps at most K of their orders
(chosen by a hash of the order id, so the choice depends on nothing else) and every order amount
is clipped to [0, C]. Removing one customer then changes the count vector by at most K (L1 and L2)
and the revenue vector by at most K*C. Every cell of the public domain (regions x months from the
policy) is released, so the presence of a cell reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np

from elt_platform.access.sensitivity import PRIVATE_SCHEMA_PREFIX
from elt_platform.environments import PROD, environment_from_name
from elt_platform.errors import ConfigError, UnknownAsset
from elt_platform.governance import budget as budgets
from elt_platform.governance.privacy import LAPLACE, Calibration, add_noise, calibrate, split_budget
from elt_platform.project.policies import (
    PRIVATE_DATASET_INPUTS,
    Action,
    Policies,
    PrivateDataset,
    validate_consumer,
)
from elt_platform.sqlident import sql_literal

RELEASED_KIND = "privacy.released"
SOURCES = PRIVATE_DATASET_INPUTS


@dataclass(frozen=True)
class PrivateRelease:
    dataset: str
    consumer: str
    asset: str
    version_id: str
    environment: str
    release_id: str | None
    cells: int
    count_noise: Calibration
    revenue_noise: Calibration
    budget: budgets.BudgetState


def private_asset(consumer: str, dataset: str) -> str:
    return f"{PRIVATE_SCHEMA_PREFIX}{consumer}/{dataset}"


def orders_by_region_month_sql(orders_scan: str, customers_scan: str, ds: PrivateDataset) -> str:
    """The clipped, exact aggregate over the whole public domain (before any noise)."""
    regions = ", ".join(f"({sql_literal(r)})" for r in ds.regions)
    months = ", ".join(f"(DATE '{m.isoformat()}')" for m in ds.months())
    k, cap = ds.max_orders_per_customer, float(ds.max_order_amount)
    return f"""
    WITH orders AS (
        SELECT o.customer_id, c.region, CAST(date_trunc('month', o.order_date) AS DATE) AS month,
               least(greatest(CAST(o.order_amount AS DOUBLE), 0.0), {cap}) AS amount,
               row_number() OVER (PARTITION BY o.customer_id ORDER BY hash(o.order_id)) AS n
        FROM {orders_scan} AS o JOIN {customers_scan} AS c ON o.customer_id = c.customer_id
        WHERE o.status <> 'cancelled'
    ),
    kept AS (SELECT * FROM orders WHERE n <= {k}),
    domain AS (
        SELECT region, month FROM (VALUES {regions}) AS r(region)
        CROSS JOIN (VALUES {months}) AS m(month)
    )
    SELECT d.region, d.month, count(kept.customer_id) AS order_count,
           coalesce(sum(kept.amount), 0.0) AS revenue
    FROM domain AS d LEFT JOIN kept ON kept.region = d.region AND kept.month = d.month
    GROUP BY d.region, d.month ORDER BY d.region, d.month
    """


def noise_calibrations(
    ds: PrivateDataset, mechanism: str, epsilon: float, delta: float
) -> tuple[Calibration, Calibration]:
    """Half the privacy loss for the counts, half for the revenue (basic composition)."""
    eps, dlt = split_budget(epsilon, delta, 2)
    k = ds.max_orders_per_customer
    return (
        calibrate(mechanism, k, eps, dlt),
        calibrate(mechanism, k * float(ds.max_order_amount), eps, dlt),
    )


def release_private_aggregate(
    wh,
    *,
    dataset: str,
    consumer: str,
    epsilon: float,
    delta: float = 0.0,
    mechanism: str = LAPLACE,
    source_environment: str = PROD,
    target_environment: str = PROD,
    rng: np.random.Generator | None = None,
    policies: Policies | None = None,
) -> PrivateRelease:
    """Validate, spend the budget, then compute and publish one noisy release. A refused spend
    writes nothing; a failure after the spend keeps it spent (privacy accounting errs safe)."""
    policies = policies or wh.access.policies
    ds = policies.privacy.datasets.get(dataset)
    if ds is None or dataset not in SOURCES:
        known = ", ".join(sorted(set(policies.privacy.datasets) & set(SOURCES))) or "none"
        raise ConfigError(f"unknown private dataset {dataset!r} (known: {known})")
    try:
        validate_consumer(consumer)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    count_noise, revenue_noise = noise_calibrations(ds, mechanism, epsilon, delta)
    target = environment_from_name(target_environment).name
    wh.authorize(Action.RELEASE_PRIVATE_AGGREGATES)
    wh.authorize("read", source_environment)
    wh.authorize("write", target)
    pointers = wh.resolve(source_environment)
    missing = [a for a in SOURCES[dataset] if a not in pointers]
    if missing:
        raise UnknownAsset(f"{source_environment!r} has no version of {', '.join(missing)}")
    actor = wh.access.identity.actor
    state = budgets.spend(
        wh,
        dataset=dataset,
        consumer=consumer,
        epsilon=epsilon,
        delta=delta,
        mechanism=mechanism,
        budget=ds.budget_for(consumer),
        actor=actor,
        environment=target,
    )
    orders, customers = (pointers[a] for a in SOURCES[dataset])
    con = duckdb.connect(config=wh.settings.duckdb_config())  # the installation's memory limit
    try:
        exact = con.execute(
            orders_by_region_month_sql(orders.scan_sql, customers.scan_sql, ds)
        ).fetchall()
        generator = rng if rng is not None else np.random.default_rng()  # OS entropy
        counts = add_noise(np.array([r[2] for r in exact]), count_noise, generator)
        revenue = add_noise(np.array([r[3] for r in exact]), revenue_noise, generator)
        con.execute(
            "CREATE TABLE noisy (region VARCHAR, month DATE, order_count BIGINT,"
            " revenue DECIMAL(18,2))"
        )
        con.executemany(
            "INSERT INTO noisy VALUES (?, ?, ?, ?)",
            [
                (r[0], r[1], max(round(c), 0), round(max(v, 0.0), 2))
                for r, c, v in zip(exact, counts.tolist(), revenue.tolist(), strict=True)
            ],
        )
        asset = private_asset(consumer, dataset)
        version = wh.versions.write_query(
            con,
            asset,
            "SELECT * FROM noisy ORDER BY region, month",
            environment=target,
            inputs={a: pointers[a].version_id for a in SOURCES[dataset]},
            params={
                "differential_privacy": {
                    "dataset": dataset,
                    "consumer": consumer,
                    "mechanism": mechanism,
                    "epsilon": epsilon,
                    "delta": delta,
                    "count_scale": count_noise.scale,
                    "revenue_scale": revenue_noise.scale,
                    "max_orders_per_customer": ds.max_orders_per_customer,
                    "max_order_amount": ds.max_order_amount,
                }
            },
        )
    finally:
        con.close()
    release_id = None
    if target == PROD:
        result = wh.publish_versions(
            {asset: version.version_id}, source_environment=f"dp:{consumer}", triggered_by=actor
        )
        release_id = result.release.release_id
    else:
        wh.commit_pointers(target, {asset: version}, run_id=None)
    wh.ledger.append(
        RELEASED_KIND,
        actor=actor,
        environment=target,
        params={
            "dataset": dataset,
            "consumer": consumer,
            "mechanism": mechanism,
            "epsilon": epsilon,
            "delta": delta,
            "release_id": release_id,
            "cells": len(exact),
            "source_environment": source_environment,
        },
        assets={asset: version.version_id},
    )
    return PrivateRelease(
        dataset,
        consumer,
        asset,
        version.version_id,
        target,
        release_id,
        len(exact),
        count_noise,
        revenue_noise,
        state,
    )
