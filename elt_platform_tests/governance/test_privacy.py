"""Differential privacy: noise calibration checked statistically, contribution clipping bounds one
customer's influence, and the per-(dataset, consumer) budget refuses a release that exceeds it."""

from __future__ import annotations

import math
import sqlite3

import duckdb
import numpy as np
import pytest

from elt_platform.environments import PROD
from elt_platform.errors import AccessDenied, InvalidPrivacyParameters, PrivacyBudgetExceeded
from elt_platform.governance.aggregates import (
    noise_calibrations,
    orders_by_region_month_sql,
    private_asset,
    release_private_aggregate,
)
from elt_platform.governance.budget import all_spend
from elt_platform.governance.privacy import add_noise, calibrate, gaussian_calibration
from elt_platform.project.project_file import load_policies
from elt_platform.settings import load_settings
from elt_platform_tests.governance.conftest import as_identity

DATASET = "orders_by_region_month"
DRAWS = 200_000


@pytest.mark.parametrize(
    ("sensitivity", "epsilon", "seed"), [(1, 1.0, 1), (20, 0.5, 2), (3, 4.0, 3)]
)
def test_laplace_noise_variance_matches_two_times_sensitivity_over_epsilon_squared(
    sensitivity, epsilon, seed
):
    calibration = calibrate("laplace", sensitivity, epsilon)
    noise = add_noise(np.zeros(DRAWS), calibration, np.random.default_rng(seed))
    expected = 2 * (sensitivity / epsilon) ** 2
    assert calibration.variance == pytest.approx(expected)
    # The sample variance of Laplace noise has relative standard error sqrt(5 / n) = 0.5 %.
    assert np.var(noise) == pytest.approx(expected, rel=0.03)
    assert abs(np.mean(noise)) < 4 * math.sqrt(expected / DRAWS)
    # Laplace, not Gaussian: mean absolute deviation is b (Gaussian would be 0.80 sigma = 1.13 b).
    assert np.mean(np.abs(noise)) == pytest.approx(sensitivity / epsilon, rel=0.02)


def test_gaussian_noise_variance_matches_the_classic_calibration():
    calibration = gaussian_calibration(5, 0.5, 1e-6)
    sigma = 5 * math.sqrt(2 * math.log(1.25 / 1e-6)) / 0.5
    assert calibration.scale == pytest.approx(sigma)
    noise = add_noise(np.zeros(DRAWS), calibration, np.random.default_rng(7))
    assert np.var(noise) == pytest.approx(sigma**2, rel=0.03)


def test_seeded_draws_are_reproducible_and_different_seeds_differ():
    calibration = calibrate("laplace", 1, 1.0)
    first = add_noise(np.zeros(10), calibration, np.random.default_rng(5))
    assert np.array_equal(first, add_noise(np.zeros(10), calibration, np.random.default_rng(5)))
    assert not np.array_equal(first, add_noise(np.zeros(10), calibration, np.random.default_rng(6)))


@pytest.mark.parametrize(
    ("mechanism", "epsilon", "delta", "message"),
    [
        ("laplace", 0, 0, "epsilon must be a finite number > 0"),
        ("laplace", -1, 0, "epsilon must be a finite number > 0"),
        ("laplace", float("inf"), 0, "epsilon must be a finite number > 0"),
        ("laplace", 1, 1e-6, "takes no delta"),
        ("gaussian", 1.5, 1e-6, "needs epsilon < 1"),
        ("gaussian", 0.5, 0, "needs 0 < delta < 1"),
        ("exponential", 1, 0, "unknown mechanism"),
    ],
)
def test_invalid_privacy_parameters_are_refused(mechanism, epsilon, delta, message):
    with pytest.raises(InvalidPrivacyParameters, match=message):
        calibrate(mechanism, 1, epsilon, delta)


def _clipped(orders: list[tuple], customers: list[tuple]) -> dict[tuple, tuple[int, float]]:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE o (order_id BIGINT, customer_id BIGINT, order_date DATE, status VARCHAR,"
        " order_amount DECIMAL(18,2))"
    )
    con.execute("CREATE TABLE c (customer_id BIGINT, region VARCHAR)")
    con.executemany("INSERT INTO o VALUES (?, ?, ?, ?, ?)", orders)
    con.executemany("INSERT INTO c VALUES (?, ?)", customers)
    ds = load_policies(load_settings()).privacy.datasets[DATASET]
    rows = con.execute(orders_by_region_month_sql("o", "c", ds)).fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def test_clipping_bounds_what_one_customer_can_change():
    ds = load_policies(load_settings()).privacy.datasets[DATASET]
    k, cap = ds.max_orders_per_customer, ds.max_order_amount
    base_orders = [(i, i % 5, f"2024-0{1 + i % 6}-15", "placed", 40.0) for i in range(60)]
    customers = [(i, ["north", "south", "east", "west", "central"][i]) for i in range(5)]
    # A whale: 10 x K orders of 100 x the cap each, spread over every month of the domain.
    whale = [
        (1000 + j, 99, f"{2024 + j % 2}-{1 + j % 12:02d}-03", "delivered", 100 * cap)
        for j in range(10 * k)
    ]
    without = _clipped(base_orders, customers)
    with_whale = _clipped(base_orders + whale, [*customers, (99, "north")])
    assert without.keys() == with_whale.keys()  # the release domain never depends on the data
    assert len(without) == len(ds.regions) * len(ds.months())
    count_change = sum(abs(with_whale[c][0] - without[c][0]) for c in without)
    revenue_change = sum(abs(with_whale[c][1] - without[c][1]) for c in without)
    assert count_change == k  # the whale kept exactly K orders...
    assert revenue_change == pytest.approx(k * cap)  # ...each clipped to the cap
    count_noise, revenue_noise = noise_calibrations(ds, "laplace", 1.0, 0.0)
    assert (count_noise.sensitivity, revenue_noise.sensitivity) == (k, k * cap)
    assert count_noise.epsilon + revenue_noise.epsilon == pytest.approx(1.0)
    # Cancelled orders and orders outside the domain contribute nothing.
    extra = [(5000, 0, "2024-02-02", "cancelled", 10.0), (5001, 0, "2019-02-02", "placed", 10.0)]
    assert _clipped(base_orders + extra, customers) == without


def _state(settings) -> tuple:
    con = sqlite3.connect(settings.metadata_path)
    try:
        return tuple(
            con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("versions", "releases", "ledger", "env_pointers")
        )
    finally:
        con.close()


def test_private_release_is_published_and_the_budget_refuses_the_release_that_would_exceed_it(
    installation,
):
    wh = as_identity(installation, "eve@example.com", "engineer")
    budget = load_policies(load_settings()).privacy.datasets[DATASET].budget_for("partner")
    releases = []
    for seed in range(3):  # 3 x 1.0 = the whole budget of 3.0
        releases.append(
            release_private_aggregate(
                wh,
                dataset=DATASET,
                consumer="partner",
                epsilon=budget.epsilon / 3,
                rng=np.random.default_rng(seed),
            )
        )
    last = releases[-1]
    assert last.asset == private_asset("partner", DATASET) == "dp_partner/orders_by_region_month"
    assert last.budget.spent_epsilon == pytest.approx(budget.epsilon)
    assert wh.environments.pointers(PROD)[last.asset] == last.version_id
    assert wh.releases.current().release_id == last.release_id
    con = as_identity(installation, "ann@example.com", "analyst").connect(PROD)
    try:  # every column is public: an analyst reads the aggregate unmasked
        rows = con.execute(
            "SELECT region, month, order_count, revenue FROM dp_partner.orders_by_region_month"
        ).fetchall()
    finally:
        con.close()
    assert len(rows) == last.cells == 8 * 24
    assert all(r[2] >= 0 and r[3] >= 0 for r in rows)
    assert len({r.version_id for r in releases}) == 3  # fresh noise every time

    before = _state(installation)
    with pytest.raises(PrivacyBudgetExceeded, match="would exceed its budget: 3 of 3 epsilon"):
        release_private_aggregate(wh, dataset=DATASET, consumer="partner", epsilon=0.01)
    assert _state(installation) == before  # nothing written: no version, release, spend or entry
    assert wh.environments.pointers(PROD)[last.asset] == last.version_id
    # The budget is per consumer: another consumer still has all of theirs.
    other = release_private_aggregate(
        wh, dataset=DATASET, consumer="auditor_office", epsilon=0.5, target_environment="staging"
    )
    assert other.release_id is None
    assert wh.environments.pointers("staging")[other.asset] == other.version_id
    spent = {(d, c): (eps, n) for d, c, eps, _, n in all_spend(wh.meta)}
    assert spent == {
        (DATASET, "partner"): (pytest.approx(3.0), 3),
        (DATASET, "auditor_office"): (pytest.approx(0.5), 1),
    }
    kinds = [e.kind for e in wh.ledger.entries()]
    assert kinds.count("privacy.budget_spent") == 4 and kinds.count("privacy.released") == 4
    assert wh.ledger.verify().ok


def test_gaussian_releases_spend_delta_and_analysts_may_not_release(installation):
    wh = as_identity(installation, "eve@example.com", "engineer")
    result = release_private_aggregate(
        wh,
        dataset=DATASET,
        consumer="lab",
        epsilon=0.8,
        delta=1e-7,
        mechanism="gaussian",
        target_environment="staging",
        rng=np.random.default_rng(3),
    )
    assert result.budget.spent_delta == pytest.approx(1e-7)
    assert result.count_noise.mechanism == "gaussian"
    assert result.count_noise.scale == pytest.approx(
        gaussian_calibration(20, 0.4, 5e-8).scale
    )  # half the budget per query
    before = _state(installation)
    analyst = as_identity(installation, "ann@example.com", "analyst")
    with pytest.raises(AccessDenied, match="may not release private aggregates"):
        release_private_aggregate(analyst, dataset=DATASET, consumer="lab", epsilon=0.1)
    versions, releases, ledger, pointers = _state(installation)
    assert (versions, releases, pointers) == (before[0], before[1], before[3])
    assert ledger == before[2] + 1  # only the access.denied entry
    with pytest.raises(InvalidPrivacyParameters):
        release_private_aggregate(
            wh, dataset=DATASET, consumer="lab", epsilon=2.0, delta=1e-7, mechanism="gaussian"
        )
    assert _state(installation)[2] == before[2] + 1
