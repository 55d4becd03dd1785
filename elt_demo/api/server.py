"""The demo API server: `/v1/<table>` with offset or page pagination, `/v1/<table>/feed` with
cursor/next-link pagination, both filtered by `since_id`; bearer-token auth; injected faults.

It binds to 127.0.0.1 only and runs in a background thread (`DemoApi`) or in the foreground
(`python -m elt_demo.api`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from elt_demo.api.data import TableData, json_value
from elt_demo.api.faults import FaultInjector, FaultPlan

HOST = "127.0.0.1"
URL_ENV = "ELT_DEMO_API_URL"  # overrides the payments source's base_url (elt_project.yml)
TOKEN_ENV = "ELT_DEMO_API_TOKEN"  # the bearer token the connector sends
MAX_PAGE_SIZE = 10_000


class BadRequest(Exception):
    pass


class DemoApi:
    """The server over `data_dir` (one folder of Parquet files per table), on a free port."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        token: str | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.token = token
        self.injector = FaultInjector(faults or FaultPlan())
        self._tables: dict[str, TableData] = {}
        self._secret = secrets.token_bytes(16)  # signs cursors so forged tokens are rejected
        self._httpd = ThreadingHTTPServer((HOST, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.injector.counts)

    def set_faults(self, plan: FaultPlan) -> None:
        self.injector.set_plan(plan)

    def start(self) -> DemoApi:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="demo-api", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    @contextmanager
    def running(self) -> Iterator[DemoApi]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def table(self, name: str) -> TableData | None:
        if not name.isidentifier():
            return None
        data = self._tables.setdefault(name, TableData(self.data_dir / name))
        return data if data.exists() else None

    def encode_cursor(self, after: int) -> str:
        payload = base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()
        return f"{payload}.{self._sign(payload)}"

    def decode_cursor(self, token: str) -> int:
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise BadRequest("invalid cursor")
        try:
            return int(json.loads(base64.urlsafe_b64decode(payload.encode()))["after"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest("invalid cursor") from exc

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()[:20]


def _handler_for(api: DemoApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # quiet: tests and the demo print their own summaries

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlsplit(self.path)
            if url.path == "/health":
                return self._json(200, {"ok": True})
            if api.token is not None:
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {api.token}".encode()):
                    api.injector.count("unauthorized")
                    return self._json(401, {"error": "missing or invalid bearer token"})
            parts = url.path.strip("/").split("/")
            if len(parts) not in (2, 3) or parts[0] != "v1" or parts[2:] not in ([], ["feed"]):
                return self._json(404, {"error": f"no route {url.path}"})
            table = api.table(parts[1])
            if table is None:
                return self._json(404, {"error": f"no table {parts[1]!r}"})
            fault = api.injector.draw()
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                headers = {"Retry-After": _seconds(api.injector.plan.retry_after)}
                return self._json(fault.status, {"error": "injected fault"}, headers)
            if api.injector.plan.html:
                return self._send(
                    200, b"<html><body>Service maintenance</body></html>", "text/html"
                )
            try:
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                body = _page(api, table, parts[1], query, feed=len(parts) == 3)
            except BadRequest as exc:
                return self._json(400, {"error": str(exc)})
            api.injector.count("ok")
            self._json(200, body, drop=fault.drop)

        def _json(
            self, status: int, body: object, headers: dict | None = None, drop: bool = False
        ) -> None:
            data = json.dumps(body, default=json_value).encode()
            self._send(status, data, "application/json", headers, drop)

        def _send(self, status, data: bytes, kind: str, headers=None, drop=False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if not drop:
                self.wfile.write(data)
                return
            self.wfile.write(data[: len(data) // 2])  # half a page, then the connection dies
            self.wfile.flush()
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def _page(api: DemoApi, table: TableData, name: str, query: dict[str, str], *, feed: bool):
    limit = _int(query, "limit", _int(query, "per_page", 100))
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    since = _int(query, "since_id", None)
    if feed:
        after = api.decode_cursor(query["cursor"]) if "cursor" in query else since
        rows, remaining = table.page(after=after, offset=0, limit=limit)
        link = None
        if remaining > len(rows):
            cursor = api.encode_cursor(rows[-1][table.snapshot().table.column_names[0]])
            if api.injector.plan.bad_next_link:
                cursor = cursor[:-4] + "beef"  # a token the server did not sign
            link = f"/v1/{name}/feed?" + urlencode({"cursor": cursor, "limit": limit})
        return {"data": rows, "next": link, "has_more": link is not None}
    if "page" in query:
        page = _int(query, "page", 1)
        if page < 1:
            raise BadRequest("page must be >= 1")
        offset = (page - 1) * limit
    else:
        offset = _int(query, "offset", 0)
    if offset < 0:
        raise BadRequest("offset must be >= 0")
    rows, total = table.page(after=since, offset=offset, limit=limit)
    return {"data": rows, "total": total, "offset": offset, "limit": limit}


def _int(query: dict[str, str], key: str, default):
    if key not in query:
        return default
    try:
        return int(query[key])
    except ValueError:
        raise BadRequest(f"{key} must be an integer") from None


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
