"""Fault injection for the demo API: which requests fail, how, and counters of what happened."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultPlan:
    """Fractions of data requests that fail: `error_rate` answer 500 or 429 (with Retry-After),
    `drop_rate` send half the body then close the connection, `slow_rate` wait `slow_seconds`
    first. `html` answers every data request with an HTML page (a misrouted proxy, say);
    `bad_next_link` hands out next links whose cursor the server will reject."""

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 429)
    retry_after: float = 1.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 1.0
    html: bool = False
    bad_next_link: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate", "slow_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.error_rate + self.drop_rate > 1.0:
            raise ValueError("error_rate + drop_rate must not exceed 1")


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # an error status instead of the data
    drop: bool = False
    delay: float = 0.0


class FaultInjector:
    """Draws a fault per request from a seeded generator and counts outcomes (thread-safe)."""

    def __init__(self, plan: FaultPlan) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.set_plan(plan)

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)

    def draw(self) -> Fault:
        with self._lock:
            plan, roll = self.plan, self._rng.random()
            delay = plan.slow_seconds if self._rng.random() < plan.slow_rate else 0.0
            if roll < plan.error_rate:
                status = self._rng.choice(plan.error_statuses)
                self.counts[f"status_{status}"] += 1
                fault = Fault(status=status, delay=delay)
            elif roll < plan.error_rate + plan.drop_rate:
                self.counts["dropped"] += 1
                fault = Fault(drop=True, delay=delay)
            else:
                fault = Fault(delay=delay)
            if delay:
                self.counts["slow"] += 1
            return fault

    def count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1
