"""A JSON-over-HTTP client for connectors: retries with exponential back-off and full jitter on
5xx, 429 (honouring Retry-After), timeouts and broken connections; fails fast on 4xx.

Credentials travel only in request headers; no message built here contains a header value.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import urllib3

from elt_platform.errors import SourceAuthError, SourceDataError, SourceNotFound, SourceUnavailable


@dataclass(frozen=True)
class RetryBudget:
    """How hard one request is retried before the failure is reported as transient."""

    max_attempts: int = 6
    backoff_base: float = 0.2
    backoff_max: float = 5.0
    timeout: float = 10.0


@dataclass
class FetchCounters:
    requests: int = 0
    retries: int = 0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, requests: int = 0, retries: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.bytes += nbytes


class JsonClient:
    """Thread-safe GET of JSON documents for one source (a pooled urllib3 manager)."""

    def __init__(
        self,
        source: str,
        headers: dict[str, str],
        budget: RetryBudget,
        *,
        pool_size: int = 4,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self._headers = {"Accept": "application/json", **headers}
        self.budget = budget
        self.counters = FetchCounters()
        self._rng = rng or random.Random()
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=pool_size,
            retries=False,
            timeout=urllib3.Timeout(connect=budget.timeout, read=budget.timeout),
        )

    def close(self) -> None:
        self._pool.clear()

    def get(self, url: str, what: str) -> Any:
        """The decoded JSON body of `url`; `what` names the page in error messages."""
        last = ""
        for attempt in range(1, self.budget.max_attempts + 1):
            wait = self._backoff(attempt)
            try:
                response = self._pool.request(
                    "GET", url, headers=self._headers, preload_content=True, redirect=False
                )
            except urllib3.exceptions.HTTPError as exc:  # timeout, refused, dropped mid-body
                last = _describe(exc)
            else:
                self.counters.add(requests=1, nbytes=len(response.data))
                status = response.status
                if status == 200:
                    return self._decode(response, what)
                last = f"HTTP {status}"
                if status == 429:
                    wait = max(wait, _retry_after(response))
                elif status < 500:
                    self._fail_permanently(status, response, what)
            if attempt == self.budget.max_attempts:
                break
            self.counters.add(retries=1)
            time.sleep(wait)
        raise SourceUnavailable(
            f"source {self.source!r}: {what} failed {self.budget.max_attempts} times (last: {last})"
        )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.budget.backoff_max, self.budget.backoff_base * 2 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)  # full jitter: retries of many pages spread out

    def _decode(self, response, what: str) -> Any:
        kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        text = response.data[:80].decode("utf-8", "replace").replace("\n", " ")
        if kind and "json" not in kind:
            raise SourceDataError(
                f"source {self.source!r}: {what} returned {kind} instead of JSON: {text!r}"
            )
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise SourceDataError(
                f"source {self.source!r}: {what} is not valid JSON ({exc}): {text!r}"
            ) from None

    def _fail_permanently(self, status: int, response, what: str) -> None:
        detail = _error_detail(response)
        message = f"source {self.source!r}: {what} was refused with HTTP {status}{detail}"
        if status in (401, 403):
            raise SourceAuthError(message)
        if status in (404, 410):
            raise SourceNotFound(message)
        raise SourceDataError(message)


def _retry_after(response) -> float:
    """Seconds asked for by Retry-After (a number; fractions accepted; dates treated as 1 s)."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return 0.0
    try:
        return max(0.0, min(float(raw), 60.0))
    except ValueError:
        return 1.0


def _error_detail(response) -> str:
    try:
        body = json.loads(response.data)
    except ValueError:
        return ""
    message = body.get("error") if isinstance(body, dict) else None
    return f": {str(message)[:200]}" if message else ""


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
