"""Alerts to dataset owners about drift and quarantine, through pluggable sinks, de-duplicated so
the same condition alerts once (until it changes) rather than on every run."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from elt_platform.store.metadata import MetadataStore, utc_now

_DEDUP_TABLE = """
CREATE TABLE IF NOT EXISTS alert_fingerprints (
    fingerprint TEXT PRIMARY KEY,
    first_sent_at TEXT NOT NULL,
    dataset TEXT NOT NULL,
    kind TEXT NOT NULL
)"""
# How often a reported condition came back and was suppressed (the alert fatigue review).
_REPEATS_TABLE = """
CREATE TABLE IF NOT EXISTS alert_repeats (
    fingerprint TEXT PRIMARY KEY,
    repeats INTEGER NOT NULL,
    last_at TEXT NOT NULL
)"""


@dataclass(frozen=True)
class Alert:
    dataset: str
    owner: str
    kind: str  # "drift" or "quarantine"
    environment: str
    message: str
    details: dict

    def fingerprint(self) -> str:
        # Counts change from run to run; the condition (what drifted, which reasons) does not.
        stable = {k: v for k, v in self.details.items() if k != "counts"}
        blob = json.dumps([self.dataset, self.kind, self.environment, stable], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None: ...


class JsonlSink:
    """Append one JSON object per alert to a file (the default sink)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def send(self, alert: Alert) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps({"at": utc_now(), **asdict(alert)}, sort_keys=True) + "\n")


class WebhookSink:
    """POST the alert as JSON to a URL (e.g. a chat or incident webhook)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url, self.timeout = url, timeout

    def send(self, alert: Alert) -> None:
        body = json.dumps({"at": utc_now(), **asdict(alert)}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            response.read()


class AlertRouter:
    """Sends each distinct alert once to every sink; repeats of the same condition are dropped."""

    def __init__(self, meta: MetadataStore, sinks: list[AlertSink]) -> None:
        self.meta, self.sinks = meta, sinks
        with meta.transaction() as tx:
            tx.execute(_DEDUP_TABLE)
            tx.execute(_REPEATS_TABLE)

    def emit(self, alert: Alert) -> bool:
        """True if the alert was sent, False if this exact condition was already reported."""
        with self.meta.transaction() as tx:
            cursor = tx.execute(
                "INSERT OR IGNORE INTO alert_fingerprints (fingerprint, first_sent_at, dataset,"
                " kind) VALUES (?,?,?,?)",
                (alert.fingerprint(), utc_now(), alert.dataset, alert.kind),
            )
            if cursor.rowcount == 0:
                tx.execute(
                    "INSERT INTO alert_repeats (fingerprint, repeats, last_at) VALUES (?, 1, ?)"
                    " ON CONFLICT (fingerprint) DO UPDATE SET repeats = repeats + 1,"
                    " last_at = excluded.last_at",
                    (alert.fingerprint(), utc_now()),
                )
                return False
            for sink in self.sinks:
                sink.send(alert)  # a failing sink rolls back, so the alert is retried next run
        return True


def default_router(meta: MetadataStore, warehouse_root: Path) -> AlertRouter:
    """JSON-lines file under the warehouse, plus a webhook when ELT_ALERT_WEBHOOK is set."""
    sinks: list[AlertSink] = [JsonlSink(Path(warehouse_root) / "alerts.jsonl")]
    url = os.environ.get("ELT_ALERT_WEBHOOK")
    if url:
        sinks.append(WebhookSink(url))
    return AlertRouter(meta, sinks)
