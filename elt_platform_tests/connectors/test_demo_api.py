"""The demo API and `elt sources generate`: what the connectors are tested against."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import urllib3

from elt_demo.api import DemoApi, FaultPlan
from elt_platform_tests.conftest import cli_env, make_settings


def _get(http, url: str, token: str | None = "t0k") -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = http.request("GET", url, headers=headers, retries=False)
    return response.status, json.loads(response.data)


def test_every_pagination_style_serves_the_same_records_and_auth_is_required(sources_dir):
    http = urllib3.PoolManager()
    with DemoApi(sources_dir, token="t0k").running() as api:
        assert api.url.startswith("http://127.0.0.1:")
        assert _get(http, f"{api.url}/v1/payments", token=None)[0] == 401
        assert _get(http, f"{api.url}/v1/payments", token="nope")[0] == 401
        status, first = _get(http, f"{api.url}/v1/payments?limit=500&offset=0")
        total = first["total"]
        offsets = [
            r
            for o in range(0, total, 500)
            for r in _get(http, f"{api.url}/v1/payments?limit=500&offset={o}")[1]["data"]
        ]
        pages = [
            r
            for p in range(1, total // 500 + 2)
            for r in _get(http, f"{api.url}/v1/payments?per_page=500&page={p}")[1]["data"]
        ]
        feed, link = [], "/v1/payments/feed?limit=500"
        while link:
            body = _get(http, api.url + link)[1]
            feed += body["data"]
            link = body["next"]
        assert status == 200 and len(offsets) == total and offsets == pages == feed
        since = _get(http, f"{api.url}/v1/payments?since_id={total - 3}&limit=10")[1]
        assert [r["payment_id"] for r in since["data"]] == [total - 2, total - 1, total]
        assert _get(http, f"{api.url}/v1/payments/feed?cursor=forged.abc")[0] == 400
        assert _get(http, f"{api.url}/v1/nosuch")[0] == 404


def test_injected_faults_follow_the_plan(sources_dir):
    http = urllib3.PoolManager()
    plan = FaultPlan(error_rate=0.3, retry_after=0.5, seed=1)
    with DemoApi(sources_dir, token="t0k", faults=plan).running() as api:
        statuses = [
            http.request(
                "GET",
                f"{api.url}/v1/payments?limit=1",
                headers={"Authorization": "Bearer t0k"},
                retries=False,
            )
            for _ in range(200)
        ]
    failed = [r for r in statuses if r.status != 200]
    assert 40 <= len(failed) <= 80  # about 30 %
    assert {r.status for r in failed} == {500, 429}
    assert all(r.headers["Retry-After"] == "0.500" for r in failed if r.status == 429)


def test_api_module_runs_as_a_process_and_stops_on_sigterm(sources_dir):
    env = {**os.environ, "ELT_DEMO_API_TOKEN": "t0k"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "elt_demo.api", "--data-dir", str(sources_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = proc.stdout.readline().strip()
        assert _get(urllib3.PoolManager(), f"{url}/v1/payments?limit=1")[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_sources_generate_writes_the_sqlite_source_once(tmp_path):
    settings = make_settings(tmp_path / "home", ELT_SOURCES_DIR=str(tmp_path / "landing"))
    env = cli_env(settings)
    args = [sys.executable, "-m", "elt_platform", "sources", "generate", "--rows", "2000"]
    first = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("wrote")
    db = tmp_path / "landing" / "db" / "shop.sqlite"
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM customers").fetchone() == (200,)
    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert second.stdout.startswith("unchanged")
