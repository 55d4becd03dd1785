"""Alerts reach the owner once per condition, through a file and a real local webhook."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from elt_platform.audit.observability import alert_volumes
from elt_platform.connectors.alerts import Alert, AlertRouter, JsonlSink, WebhookSink
from elt_platform.store.metadata import MetadataStore


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def _alert(reasons, count=3):
    return Alert(
        "raw/orders",
        "team:data-platform",
        "quarantine",
        "staging",
        f"{count} rows quarantined",
        {"reasons": reasons, "counts": count},
    )


def test_same_condition_alerts_once_and_a_new_condition_alerts_again(tmp_path, webhook):
    url, received = webhook
    router = AlertRouter(
        MetadataStore(tmp_path / "m.sqlite"),
        [JsonlSink(tmp_path / "alerts.jsonl"), WebhookSink(url)],
    )
    assert router.emit(_alert(["null key in order_id"]))
    assert not router.emit(_alert(["null key in order_id"], count=9))  # same condition, new count
    assert router.emit(_alert(["null key in order_id", "status not an allowed value"]))
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == 2 and len(received) == 2
    assert received[0]["owner"] == "team:data-platform" and received[0]["dataset"] == "raw/orders"
    # The alert fatigue review: per rule, what was sent and how many repeats were held back.
    (volume,) = alert_volumes(tmp_path / "m.sqlite")
    assert (volume.dataset, volume.kind, volume.sent, volume.suppressed) == (
        "raw/orders",
        "quarantine",
        2,
        1,
    )


def test_a_failing_sink_does_not_swallow_the_alert(tmp_path):
    router = AlertRouter(
        MetadataStore(tmp_path / "m.sqlite"), [WebhookSink("http://127.0.0.1:9/x", 0.5)]
    )
    with pytest.raises(OSError):
        router.emit(_alert(["x"]))
    ok = AlertRouter(MetadataStore(tmp_path / "m.sqlite"), [JsonlSink(tmp_path / "a.jsonl")])
    assert ok.emit(_alert(["x"]))  # not recorded as sent, so it goes out once the sink works
