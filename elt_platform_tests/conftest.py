"""Shared fixtures: a real platform installation (temp ELT_HOME, real dbt, real Dagster instance)
built once per session, plus helpers to run the `elt` CLI in subprocesses."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from elt_demo.sources import ensure_synthetic_sources
from elt_platform.settings import Settings, load_settings

DEMO_ROWS = 2_000
# A warm process (`elt warm start`) a developer left running for this Python environment would
# serve the tests' `elt` and dbt commands; tests run cold unless they start their own
# (elt_platform_tests/test_warm.py).
os.environ["ELT_WARM"] = "off"


def edit_yaml(path: Path, edit) -> Path:
    """Load a YAML file, let `edit(data)` change it in place, write it back (comments are lost)."""
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# Set by `make test-scale` (elt_demo.services): the superuser URL of a throwaway PostgreSQL server.
POSTGRES_URL_VAR = "ELT_TEST_POSTGRES_URL"


def pytest_collection_modifyitems(config, items):
    """Tests marked `scale` need the throwaway server: without its URL they are deselected (not
    skipped), so plain `make test` neither runs nor reports them."""
    if os.environ.get(POSTGRES_URL_VAR):
        return
    kept = [i for i in items if i.get_closest_marker("scale") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def postgres_database(name: str) -> str:
    """The URL of database `name` on the test server (created when missing)."""
    import psycopg2
    from sqlalchemy.engine import make_url

    base = make_url(os.environ[POSTGRES_URL_VAR])
    con = psycopg2.connect(base.render_as_string(hide_password=False))
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
    return base.set(database=name).render_as_string(hide_password=False)


def metadata_url_for(root: Path) -> str | None:
    """Under `make test-scale`: the metadata store of the installation at `root` (an ELT_HOME or
    a warehouse folder) in a PostgreSQL database of its own; otherwise None (SQLite)."""
    if not os.environ.get(POSTGRES_URL_VAR):
        return None
    digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:24]
    return postgres_database(f"elt_{digest}")


def _server():
    import psycopg2

    con = psycopg2.connect(os.environ[POSTGRES_URL_VAR])
    con.autocommit = True
    return con


def copy_metadata(source: str, target: str) -> None:
    """Under `make test-scale`: make database `target` a copy of `source` (URLs), as copying a
    meta.sqlite file does. Connections to `source` are closed first (a template must be idle)."""
    from sqlalchemy.engine import make_url

    from elt_platform.store.postgres import dispose_engines

    dispose_engines()
    old, new = make_url(source).database, make_url(target).database
    con = _server()
    try:
        with con.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (old,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{new}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{new}" TEMPLATE "{old}"')
    finally:
        con.close()


def direct_sql(meta, *statements, bypass: bool = True) -> list:
    """Run `(sql, params)` statements on a metadata store (`wh.meta`, or an installation's
    Settings) directly, triggers off, as
    someone bypassing the platform would (`bypass=False`: a plain read, triggers untouched);
    returns the last statement's rows as dicts."""
    rows: list = []
    url = meta.url if hasattr(meta, "url") else meta.metadata_url  # a store, or Settings
    if url is None:
        import sqlite3

        path = meta.path if hasattr(meta, "path") else meta.metadata_path
        con = sqlite3.connect(path, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            if bypass:
                con.execute("DROP TRIGGER IF EXISTS ledger_no_update")
                con.execute("DROP TRIGGER IF EXISTS ledger_no_delete")
            for sql, *args in statements:
                rows = [dict(r) for r in con.execute(sql, *args).fetchall()]
        finally:
            con.close()
        return rows
    import psycopg2
    import psycopg2.extras

    from elt_platform.store.postgres import translate

    con = psycopg2.connect(url)
    try:
        con.autocommit = True
        with con.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            if bypass:  # a superuser skips triggers
                cur.execute("SET session_replication_role = replica")
            for sql, *args in statements:
                cur.execute(translate(sql), *(args or [()]))
                rows = [dict(r) for r in cur.fetchall()] if cur.description else []
    finally:
        con.close()
    return rows


def new_warehouse(root: Path, **kwargs):
    """`Warehouse(root)`, with its metadata on the test server under `make test-scale`."""
    from elt_platform.store.warehouse import Warehouse

    return Warehouse(root, metadata=metadata_url_for(root), **kwargs)


def make_settings(home: Path, **overrides: str) -> Settings:
    env = {"ELT_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    url = metadata_url_for(home)
    if url is not None:
        env["ELT_METADATA_URL"] = url  # Dagster's storage follows it
    return load_settings({**os.environ, **env, **overrides})


@pytest.fixture(scope="session")
def sources_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sources") / "landing"
    ensure_synthetic_sources(out, rows=DEMO_ROWS, seed=7)
    return out


@pytest.fixture(scope="session")
def demo_api(sources_dir):
    """The payments API (elt_demo.api) over the session's sources, for every build."""
    from elt_demo.api import serving_demo_api

    with serving_demo_api(sources_dir) as api:
        yield api


@pytest.fixture(scope="session")
def platform_home(tmp_path_factory, sources_dir, demo_api) -> Settings:
    """A fresh installation whose staging has been built once and published to prod."""
    from elt_platform.access.facade import open_warehouse
    from elt_platform.launch.runs import build_environment

    home = tmp_path_factory.mktemp("platform")
    settings = make_settings(home, ELT_SOURCES_DIR=str(sources_dir))
    outcome = build_environment(settings, "staging")
    assert outcome.success, outcome.error
    open_warehouse(settings).publish("staging", triggered_by="test", run_id=outcome.run_id)
    return settings


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment a user of `settings`' installation runs `elt` in."""
    env = {
        **os.environ,
        "ELT_HOME": str(settings.home),
        "DAGSTER_HOME": str(settings.dagster_home),
        "ELT_SOURCES_DIR": str(settings.sources_dir),
        "ELT_PROJECT_DIR": str(settings.dbt_project_dir),
        "COLUMNS": "200",
    }
    if settings.project_file_override is not None:
        env["ELT_PROJECT_FILE"] = str(settings.project_file_override)
    if settings.metadata_url is not None:
        env["ELT_METADATA_URL"] = settings.metadata_url
    if settings.versions_url is not None:
        env["ELT_VERSIONS_URL"] = settings.versions_url
    return env


def run_cli(settings: Settings, *args: str, env: dict | None = None, check: bool = False):
    """Run `elt` in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "elt_platform", *args],
        env=env or cli_env(settings),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"elt {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc
