"""HTTP connector: a paginated JSON API (page/offset or cursor/next-link), incremental by a
`since` parameter over a monotonic cursor field.

Offset and page pagination fetch the first page, learn the total, then fetch the other pages
concurrently; cursor pagination follows `next` links one by one. Pages are kept in order as JSON
files and typed by DuckDB into one Parquet part, so a replayed page (a retry) adds no rows.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import duckdb

from elt_platform.connectors.base import PART_COPY_OPTIONS, Batch, ExtractContext, SourcePart
from elt_platform.connectors.http_client import JsonClient, RetryBudget
from elt_platform.errors import ConfigError, EltError, SourceAuthError, SourceDataError
from elt_platform.orchestration.dataset_names import DatasetName, http_dataset
from elt_platform.project.sources import SourceConfig, check_known_options, option
from elt_platform.sqlident import quote_ident, sql_literal

PAGINATIONS = ("offset", "page", "cursor")
_OPTIONS = {
    "base_url",
    "base_url_env",
    "endpoint",
    "pagination",
    "page_size",
    "params",
    "records_key",
    "total_key",
    "next_key",
    "auth_env",
    "auth_scheme",
    "cursor_field",
    "since_param",
    "columns",
    "concurrency",
    "timeout_seconds",
    "max_attempts",
    "backoff_seconds",
    "max_backoff_seconds",
}
Page = tuple[Path, int, Any, dict]  # records file, count, first record, other keys
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}


@dataclass(frozen=True)
class HttpConnector:
    name: str
    base_url: str
    endpoint: str
    base_url_env: str | None = None  # environment variable overriding base_url at run time
    pagination: str = "offset"
    page_size: int = 1000
    params: tuple[tuple[str, str], ...] = ()
    records_key: str = "data"
    total_key: str = "total"
    next_key: str = "next"
    auth_env: str | None = None  # environment variable holding the token (never logged)
    auth_scheme: str = "Bearer"
    cursor_field: str | None = None
    since_param: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    concurrency: int = 4
    budget: RetryBudget = RetryBudget()
    kind: str = "http"

    @classmethod
    def from_source(cls, source: SourceConfig) -> HttpConnector:
        check_known_options(source, _OPTIONS)
        base_url, endpoint = option(source, "base_url", str), option(source, "endpoint", str)
        if not base_url or not endpoint:
            raise ConfigError(f"source {source.name!r}: http needs `base_url` and `endpoint`")
        pagination = option(source, "pagination", str, "offset")
        if pagination not in PAGINATIONS:
            raise ConfigError(f"source {source.name!r}: pagination must be one of {PAGINATIONS}")
        cursor_field, since = (
            option(source, "cursor_field", str),
            option(source, "since_param", str),
        )
        if bool(cursor_field) != bool(since):
            raise ConfigError(
                f"source {source.name!r}: set both cursor_field and since_param (or neither)"
            )
        numbers = {
            k: option(source, k, (int, float), d)
            for k, d in (
                ("page_size", 1000),
                ("concurrency", 4),
                ("timeout_seconds", 10.0),
                ("max_attempts", 6),
                ("backoff_seconds", 0.2),
                ("max_backoff_seconds", 5.0),
            )
        }
        if min(numbers.values()) <= 0:
            raise ConfigError(f"source {source.name!r}: sizes, counts and timeouts must be > 0")
        return cls(
            name=source.name,
            base_url=base_url,
            endpoint=endpoint,
            base_url_env=option(source, "base_url_env", str),
            pagination=pagination,
            page_size=int(numbers["page_size"]),
            params=tuple((str(k), str(v)) for k, v in option(source, "params", dict, {}).items()),
            records_key=option(source, "records_key", str, "data"),
            total_key=option(source, "total_key", str, "total"),
            next_key=option(source, "next_key", str, "next"),
            auth_env=option(source, "auth_env", str),
            auth_scheme=option(source, "auth_scheme", str, "Bearer"),
            cursor_field=cursor_field,
            since_param=since,
            columns=tuple((str(k), str(v)) for k, v in option(source, "columns", dict, {}).items()),
            concurrency=int(numbers["concurrency"]),
            budget=RetryBudget(
                max_attempts=int(numbers["max_attempts"]),
                backoff_base=float(numbers["backoff_seconds"]),
                backoff_max=float(numbers["max_backoff_seconds"]),
                timeout=float(numbers["timeout_seconds"]),
            ),
        )

    def resolved_base_url(self) -> str:
        override = os.environ.get(self.base_url_env) if self.base_url_env else None
        return (override or self.base_url).rstrip("/") + "/"

    def datasets(self, sources_dir: Path) -> list[DatasetName]:
        """The endpoint (no OpenLineage convention: scheme://host:port + URL path)."""
        return [http_dataset(urljoin(self.resolved_base_url(), self.endpoint.lstrip("/")))]

    def changed_since(self, sources_dir: Path, state: dict[str, Any]) -> str | None:
        """Why an extraction from `state` could bring records, or None when the API has none
        after the last cursor: the extraction's own first request (same filter), one record long.
        Without a cursor every extraction re-reads the API, so it always runs."""
        since = state.get("since") if self.since_param else None
        if since is None:
            return "no cursor recorded (full re-read or an older extraction)"
        filters = {self.since_param: since}
        if self.pagination == "page":
            url = self._url(page=1, per_page=1, **filters)
        elif self.pagination == "offset":
            url = self._url(offset=0, limit=1, **filters)
        else:
            url = self._url(limit=1, **filters)
        try:
            once = replace(self.budget, max_attempts=1)
            client = JsonClient(self.name, self._auth_headers(), once)
            try:
                body = client.get(url, f"change probe ({self.endpoint})")
            finally:
                client.close()
        except EltError as exc:
            return f"probe failed: {exc}"  # the extraction retries and reports it properly
        records = body.get(self.records_key) if isinstance(body, dict) else None
        total = body.get(self.total_key) if isinstance(body, dict) else None
        if records != [] or total not in (0, None):
            return f"records after {self.cursor_field} {since}"
        return None

    def extract(self, con: duckdb.DuckDBPyConnection, ctx: ExtractContext) -> Batch:
        since = ctx.state.get("since") if self.since_param else None
        client = JsonClient(
            self.name, self._auth_headers(), self.budget, pool_size=self.concurrency
        )
        try:
            pages = self._fetch(client, since, ctx.work_dir)
        finally:
            client.close()
        records = sum(page[1] for page in pages)
        first = next((page[2] for page in pages if page[1]), None)
        parts = [self._to_part(con, ctx.work_dir, pages, first is None and since is None)]
        parts = [p for p in parts if p is not None]
        newest = since
        if self.cursor_field and records:
            top = con.execute(
                f"SELECT max({quote_ident(self.cursor_field)}) FROM"
                f" read_parquet({sql_literal(str(parts[0].path))})"
            ).fetchone()[0]
            newest = top if newest is None else max(newest, top)
        return Batch(
            parts=parts,
            state={"since": newest} if newest is not None else {},
            position={
                "endpoint": self.endpoint,
                "pagination": self.pagination,
                "since": since,
                "next_since": newest,
                "pages": len(pages),
                "records": records,
            },
            source_schema=_json_schema(first) if first else {},
            bytes_read=client.counters.bytes,
            counters={
                "http_requests": client.counters.requests,
                "http_retries": client.counters.retries,
                "pages": len(pages),
            },
        )

    def _auth_headers(self) -> dict[str, str]:
        if not self.auth_env:
            return {}
        token = os.environ.get(self.auth_env)
        if not token:
            raise SourceAuthError(
                f"source {self.name!r}: environment variable {self.auth_env} (the API token) "
                "is not set"
            )
        return {"Authorization": f"{self.auth_scheme} {token}"}

    def _url(self, **params: Any) -> str:
        query = dict(self.params)
        query.update({k: v for k, v in params.items() if v is not None})
        return urljoin(self.resolved_base_url(), self.endpoint.lstrip("/")) + "?" + urlencode(query)

    def _fetch(self, client: JsonClient, since: Any, work_dir: Path) -> list[Page]:
        """Fetch every page after `since`; returns (json file, record count, first record)."""
        filters = {self.since_param: since} if self.since_param else {}
        if self.pagination == "cursor":
            pages, url, seen = [], self._url(limit=self.page_size, **filters), set()
            while url:
                what = f"page {len(pages) + 1} ({self.endpoint})"
                body = client.get(url, what)
                pages.append(self._save(body, work_dir, len(pages), what))
                link = body.get(self.next_key) if isinstance(body, dict) else None
                if link in seen:
                    raise SourceDataError(f"source {self.name!r}: {what} links back to {link}")
                seen.add(link)
                url = urljoin(self.resolved_base_url(), link) if link else None
            return pages

        def request(index: int) -> Page:
            if self.pagination == "page":
                url = self._url(page=index + 1, per_page=self.page_size, **filters)
                what = f"page {index + 1} ({self.endpoint})"
            else:
                offset = index * self.page_size
                url = self._url(offset=offset, limit=self.page_size, **filters)
                what = f"page at offset {offset} ({self.endpoint})"
            body = client.get(url, what)
            return self._save(body, work_dir, index, what)

        first = request(0)
        total = first[3].get(self.total_key)
        if not isinstance(total, int) or total < 0:
            raise SourceDataError(
                f"source {self.name!r}: page 1 ({self.endpoint}) has no integer "
                f"`{self.total_key}`, needed for {self.pagination} pagination"
            )
        count = max(1, math.ceil(total / self.page_size))
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            rest = list(pool.map(request, range(1, count)))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # stop queued pages at the first failure
            raise
        pool.shutdown()
        return [first, *rest]

    def _save(self, body: Any, work_dir: Path, index: int, what: str) -> Page:
        records = body.get(self.records_key) if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise SourceDataError(
                f"source {self.name!r}: {what} has no list of records under `{self.records_key}`"
            )
        expected = [c for c, _ in self.columns]
        for i, record in enumerate(records):
            if expected and list(record) != expected and set(record) != set(expected):
                extra = sorted(set(record) - set(expected))
                missing = sorted(set(expected) - set(record))
                raise SourceDataError(
                    f"source {self.name!r}: {what}, record {i + 1}: "
                    + "; ".join(
                        s
                        for s in (
                            extra and f"extra field(s) {', '.join(extra)}",
                            missing and f"missing field(s) {', '.join(missing)}",
                        )
                        if s
                    )
                )
        path = work_dir / f"page-{index:06d}.json"
        path.write_text(json.dumps(records))
        meta = {k: v for k, v in body.items() if k != self.records_key}
        return path, len(records), records[0] if records else None, meta

    def _to_part(
        self,
        con: duckdb.DuckDBPyConnection,
        work_dir: Path,
        pages: list[Page],
        need_schema: bool,
    ) -> SourcePart | None:
        """All pages as one typed Parquet part (None if there is nothing new to add)."""
        files = [page[0] for page in pages if page[1]]
        part = SourcePart(work_dir / "pages.parquet", f"pages 1-{len(pages)} ({self.endpoint})")
        columns = "{" + ", ".join(f"{sql_literal(c)}: {sql_literal(t)}" for c, t in self.columns)
        typed = f", columns = {columns}}}" if self.columns else ""
        if not files:
            if not need_schema:
                return None
            if not self.columns:
                raise SourceDataError(
                    f"source {self.name!r}: the API returned no records and no `columns` are "
                    "declared, so the table's schema is unknown"
                )
            select = (
                "SELECT "
                + ", ".join(f"NULL::{t} AS {quote_ident(c)}" for c, t in self.columns)
                + " LIMIT 0"
            )
        else:
            listing = "[" + ", ".join(sql_literal(str(f)) for f in files) + "]"
            select = f"SELECT * FROM read_json({listing}, format = 'array'{typed})"
        try:
            con.execute(f"COPY ({select}) TO {sql_literal(str(part.path))} ({PART_COPY_OPTIONS})")
        except duckdb.Error as exc:
            raise self._locate_bad_page(con, pages, typed, exc) from None
        return part

    def _locate_bad_page(self, con, pages, typed: str, exc: duckdb.Error) -> SourceDataError:
        """Re-read page by page (only after a failure) to name the page that cannot be typed."""
        for number, (path, count, _, _) in enumerate(pages, start=1):
            if not count:
                continue
            try:
                con.execute(
                    f"SELECT count(*) FROM read_json({sql_literal(str(path))},"
                    f" format = 'array'{typed})"
                ).fetchall()
            except duckdb.Error as page_exc:
                reason = str(page_exc).strip().splitlines()[0].replace(str(path), "page")
                return SourceDataError(f"source {self.name!r}: page {number}: {reason}")
        return SourceDataError(f"source {self.name!r}: {str(exc).strip().splitlines()[0]}")


def _json_schema(record: dict[str, Any]) -> dict[str, str]:
    """The source-side schema as the API sends it: field -> JSON type of the first record."""
    return {
        k: "null" if v is None else _JSON_TYPES.get(type(v), "array") for k, v in record.items()
    }
