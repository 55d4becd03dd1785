"""The project-local Dagster instance: DAGSTER_HOME prepared with the repository's dagster.yaml,
plus a `storage: postgres:` block (runs, event log, schedules) when the settings name a
PostgreSQL control plane (ELT_DAGSTER_STORAGE_URL, else a PostgreSQL ELT_METADATA_URL)."""

from __future__ import annotations

import os

import dagster as dg
import yaml

from elt_platform.errors import ServiceUnavailable
from elt_platform.settings import REPO_ROOT, Settings
from elt_platform.store.service_urls import driver_url, unavailable

DAGSTER_YAML = REPO_ROOT / "dagster.yaml"  # deployment file, kept at the repository root


def dagster_yaml(settings: Settings) -> str:
    """The instance configuration: the repository's file, with Dagster's run, event-log and
    schedule storage on PostgreSQL when `settings.dagster_postgres_url` is set."""
    text = DAGSTER_YAML.read_text() if DAGSTER_YAML.exists() else ""
    url = settings.dagster_postgres_url
    if url is None:
        return text
    # psycopg2 explicitly: SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3.
    storage = {"storage": {"postgres": {"postgres_url": driver_url(url)}}}
    header = "# Generated from the repository's dagster.yaml with PostgreSQL storage.\n"
    return header + text.rstrip("\n") + "\n" + yaml.safe_dump(storage, sort_keys=False)


def prepare_dagster_home(settings: Settings) -> None:
    """Create DAGSTER_HOME with the instance configuration (kept in sync on every call; private,
    as the storage URL may carry a password)."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    target = settings.dagster_home / "dagster.yaml"
    wanted = dagster_yaml(settings)
    if wanted and (not target.exists() or target.read_text() != wanted):
        tmp = target.with_name(f".dagster.yaml.{os.getpid()}")
        tmp.write_text(wanted)
        tmp.chmod(0o600)
        os.replace(tmp, target)


def open_instance(settings: Settings) -> dg.DagsterInstance:
    prepare_dagster_home(settings)
    url = settings.dagster_postgres_url
    if url is not None:  # one line now, rather than Dagster's retries and traceback
        from elt_platform.store.postgres import probe

        probe(url, "Dagster storage")
    try:
        return dg.DagsterInstance.from_config(str(settings.dagster_home))
    except Exception as exc:
        if url is None or not _is_connection_error(exc):
            raise
        raise unavailable("Dagster storage", url, _root(exc)) from None


def _root(exc: BaseException) -> BaseException:
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        if nxt is None:
            break
        exc = nxt
    return exc


def _is_connection_error(exc: BaseException) -> bool:
    root = _root(exc)
    return isinstance(exc, ServiceUnavailable) or type(root).__name__ in {
        "OperationalError",
        "InterfaceError",
    }
