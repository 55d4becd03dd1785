"""Dagster's run, event-log and schedule storage is on PostgreSQL when the metadata store is: the
session installation (staging built through real Dagster, published to prod) has its runs and
events in the database's tables, none in DAGSTER_HOME's SQLite files, and Dagster reads them
back from there."""

from __future__ import annotations

import psycopg2
import pytest
import yaml

from elt_platform.access.facade import open_warehouse
from elt_platform.orchestration.instance import open_instance
from elt_platform.store.ledger import LedgerKind

pytestmark = pytest.mark.scale


def _rows(url: str, sql: str, *args) -> list[tuple]:
    con = psycopg2.connect(url)
    try:
        with con.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        con.close()


def test_runs_and_events_of_a_real_build_are_in_postgres(platform_home):
    url = platform_home.metadata_url
    assert url is not None and url.startswith("postgresql://")
    config = yaml.safe_load((platform_home.dagster_home / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_url"].startswith("postgresql+psycopg2://")
    # The staging build that prod's release came from, as the ledger names it.
    wh = open_warehouse(platform_home)
    [published] = wh.ledger.entries(kind=LedgerKind.RELEASE_PUBLISHED)[:1]
    run_id = published.run_id
    [(status, tags)] = _rows(url, "SELECT status, run_body FROM runs WHERE run_id = %s", run_id)
    assert status == "SUCCESS"
    assert '"elt/environment"' in tags and "staging" in tags
    events = _rows(
        url,
        "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s"
        " GROUP BY dagster_event_type",
        run_id,
    )
    counts = dict(events)
    assert counts.get("ASSET_MATERIALIZATION", 0) > 0
    assert counts.get("PIPELINE_SUCCESS", counts.get("RUN_SUCCESS")) == 1  # Dagster's stored name
    # The platform's tables and Dagster's live side by side in the same database.
    tables = {
        r[0] for r in _rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {"runs", "event_logs", "jobs", "environments", "ledger", "releases"} <= tables
    # Nothing went to DAGSTER_HOME's SQLite storage.
    assert not list(platform_home.dagster_home.rglob("*.db"))
    # Dagster itself reads the run back from PostgreSQL.
    instance = open_instance(platform_home)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert instance.get_run_by_id(run_id).is_success
