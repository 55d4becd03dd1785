"""The privacy budget ledger: every (epsilon, delta) spent per dataset and consumer, in the metadata
store. A spend is checked against the budget and recorded (with its audit entry) in one
transaction, so two concurrent releases cannot both squeeze under the limit."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from elt_platform.errors import PrivacyBudgetExceeded
from elt_platform.project.policies import Budget
from elt_platform.store.metadata import MetadataStore, utc_now

SPENT_KIND = "privacy.budget_spent"
_SLACK = 1e-9  # float sums of shares such as 0.1 + 0.2 must not refuse an exact fit

SCHEMA = """
CREATE TABLE IF NOT EXISTS privacy_spend (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    consumer TEXT NOT NULL,
    epsilon REAL NOT NULL,
    delta REAL NOT NULL,
    mechanism TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_privacy_spend ON privacy_spend(dataset, consumer);
"""


@dataclass(frozen=True)
class BudgetState:
    dataset: str
    consumer: str
    spent_epsilon: float
    spent_delta: float
    budget: Budget
    releases: int

    @property
    def remaining_epsilon(self) -> float:
        return max(self.budget.epsilon - self.spent_epsilon, 0.0)

    @property
    def remaining_delta(self) -> float:
        return max(self.budget.delta - self.spent_delta, 0.0)

    def allows(self, epsilon: float, delta: float) -> bool:
        return (
            self.spent_epsilon + epsilon <= self.budget.epsilon + _SLACK
            and self.spent_delta + delta <= self.budget.delta + _SLACK
        )


def ensure_schema(meta: MetadataStore) -> None:
    with meta.read() as con:
        con.executescript(SCHEMA)


def _state(con: sqlite3.Connection, dataset: str, consumer: str, budget: Budget) -> BudgetState:
    row = con.execute(
        "SELECT coalesce(sum(epsilon), 0), coalesce(sum(delta), 0), count(*) FROM privacy_spend"
        " WHERE dataset = ? AND consumer = ?",
        (dataset, consumer),
    ).fetchone()
    return BudgetState(dataset, consumer, float(row[0]), float(row[1]), budget, int(row[2]))


def budget_state(meta: MetadataStore, dataset: str, consumer: str, budget: Budget) -> BudgetState:
    ensure_schema(meta)
    with meta.read() as con:
        return _state(con, dataset, consumer, budget)


def all_spend(meta: MetadataStore) -> list[tuple[str, str, float, float, int]]:
    """(dataset, consumer, epsilon spent, delta spent, releases) for every pair with a spend."""
    ensure_schema(meta)
    with meta.read() as con:
        rows = con.execute(
            "SELECT dataset, consumer, sum(epsilon), sum(delta), count(*) FROM privacy_spend"
            " GROUP BY dataset, consumer ORDER BY dataset, consumer"
        ).fetchall()
    return [(r[0], r[1], float(r[2]), float(r[3]), int(r[4])) for r in rows]


def spend(
    wh: Any,
    *,
    dataset: str,
    consumer: str,
    epsilon: float,
    delta: float,
    mechanism: str,
    budget: Budget,
    actor: str,
    environment: str,
) -> BudgetState:
    """Record a spend, or raise PrivacyBudgetExceeded and record nothing."""
    ensure_schema(wh.meta)
    with wh.meta.transaction() as tx:
        state = _state(tx, dataset, consumer, budget)
        if not state.allows(epsilon, delta):
            raise PrivacyBudgetExceeded(
                f"releasing {dataset} to {consumer} with epsilon={epsilon:g}"
                + (f", delta={delta:g}" if delta else "")
                + f" would exceed its budget: {state.spent_epsilon:g} of {budget.epsilon:g}"
                f" epsilon spent in {state.releases} releases"
                + (f", {state.spent_delta:g} of {budget.delta:g} delta" if delta else "")
            )
        tx.execute(
            "INSERT INTO privacy_spend (dataset, consumer, epsilon, delta, mechanism, at, actor)"
            " VALUES (?,?,?,?,?,?,?)",
            (dataset, consumer, epsilon, delta, mechanism, utc_now(), actor),
        )
        wh.ledger.append(
            SPENT_KIND,
            actor=actor,
            environment=environment,
            tx=tx,
            params={
                "dataset": dataset,
                "consumer": consumer,
                "epsilon": epsilon,
                "delta": delta,
                "mechanism": mechanism,
                "spent_epsilon": state.spent_epsilon + epsilon,
                "budget_epsilon": budget.epsilon,
            },
        )
        return _state(tx, dataset, consumer, budget)
