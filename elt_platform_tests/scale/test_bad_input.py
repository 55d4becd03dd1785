"""Bad control-plane configuration: an unreachable server, wrong credentials, a missing database
or a URL that is not PostgreSQL's give one line naming the service and what to check, a hint,
exit 2 from `elt`, and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from elt_demo.services import free_port
from elt_platform.store.warehouse import Warehouse
from elt_platform_tests.conftest import POSTGRES_URL_VAR

pytestmark = pytest.mark.scale


def _elt(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "ELT_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "home" / "dagster_home"),
        "COLUMNS": "200",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "elt_platform", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _server():
    return make_url(os.environ[POSTGRES_URL_VAR])


def _url(**parts) -> str:
    return _server().set(**parts).render_as_string(hide_password=False)


def _assert_one_line_error(proc, *expected: str) -> list[str]:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 2, proc.stderr  # the error, then the hint
    assert lines[0].startswith("error: "), lines
    assert lines[1].startswith("hint: "), lines
    for text in expected:
        assert text in lines[0] + lines[1], lines
    return lines


def test_an_unreachable_server_is_named_with_what_to_check(tmp_path):
    port = free_port()  # nothing listens there
    proc = _elt(tmp_path, "env", "list", ELT_METADATA_URL=_url(port=port, database="meta"))
    lines = _assert_one_line_error(
        proc, f"metadata store (PostgreSQL at 127.0.0.1:{port}/meta) is unavailable"
    )
    assert "check that the server runs" in lines[1]
    assert not (tmp_path / "home" / "warehouse" / "meta.sqlite").exists()  # no fallback


def test_a_wrong_password_is_named_and_the_password_is_not_printed(tmp_path):
    server = _server()
    url = _url(password="not-the-password", database="postgres")
    proc = _elt(tmp_path, "env", "list", ELT_METADATA_URL=url)
    lines = _assert_one_line_error(
        proc,
        f"PostgreSQL at {server.host}:{server.port}/postgres",
        "password authentication failed",
    )
    assert "not-the-password" not in proc.stderr and "***" in lines[1]


def test_a_missing_database_is_named(tmp_path):
    server = _server()
    proc = _elt(tmp_path, "env", "list", ELT_METADATA_URL=_url(database="no_such_db"))
    _assert_one_line_error(
        proc, f"PostgreSQL at {server.host}:{server.port}/no_such_db", "does not exist"
    )


@pytest.mark.parametrize(
    "url", ["mysql://u:p@127.0.0.1/db", "postgresql://u:p@127.0.0.1:notaport/db"]
)
def test_a_url_that_is_not_postgresql_is_refused_with_the_forms_that_work(tmp_path, url):
    proc = _elt(tmp_path, "env", "list", ELT_METADATA_URL=url)
    lines = _assert_one_line_error(proc, "postgresql://USER:PASSWORD@HOST:PORT/DB")
    assert ":p@" not in lines[0]  # the password is redacted


def test_an_unreachable_dagster_storage_is_named(tmp_path, pg_url):
    """The metadata store answers; Dagster's storage (its own URL) does not: a build stops with
    one line naming Dagster's storage, and nothing is written to the environment."""
    port = free_port()
    proc = _elt(
        tmp_path,
        "build",
        "staging",
        ELT_METADATA_URL=pg_url,
        ELT_DAGSTER_STORAGE_URL=_url(port=port, database="dagster"),
    )
    _assert_one_line_error(
        proc, f"Dagster storage (PostgreSQL at 127.0.0.1:{port}/dagster) is unavailable"
    )
    wh = Warehouse(tmp_path / "home" / "warehouse", metadata=pg_url)
    assert wh.environments.pointers("staging") == {}
    assert wh.ledger.entries() == []
    wh.locks.ensure_free("staging")  # the failed build released its lock
