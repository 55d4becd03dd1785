"""The audit ledger: hash chain, tamper detection of each kind, entries for publish and rollback."""

import sqlite3

import dagster as dg
import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.errors import InvalidLedgerEntry
from elt_platform.orchestration.instance import open_instance
from elt_platform.store import releases
from elt_platform.store.ledger import GENESIS, LedgerKind, entry_hash
from elt_platform.store.warehouse import Warehouse
from elt_platform_tests.conftest import direct_sql, make_settings, new_warehouse, run_cli

try:  # the store's errors on either backend (psycopg2: make test-scale)
    from psycopg2 import IntegrityError as PgIntegrityError
except ImportError:  # pragma: no cover
    PgIntegrityError = sqlite3.IntegrityError
INTEGRITY_ERRORS = (sqlite3.IntegrityError, PgIntegrityError)


@pytest.fixture
def wh(tmp_path):
    wh = new_warehouse(tmp_path / "warehouse")
    for i in range(1, 6):
        wh.ledger.append(
            "sandbox.created",
            actor=f"user:u{i}",
            environment=f"sb{i}",
            run_id=f"run-{i}",
            params={"i": i, "nested": {"b": [1, 2], "a": None}},
            assets={"raw/orders": f"v{i}"},
        )
    return wh


def _tamper(wh, *statements):
    """Edit the metadata store directly, as someone bypassing the platform would."""
    direct_sql(wh.meta, *statements)


def _row(wh, seq):
    return direct_sql(wh.meta, ("SELECT * FROM ledger WHERE seq = ?", (seq,)))[0]


def test_untouched_chain_verifies_and_links_each_entry_to_the_previous_hash(wh):
    report = wh.ledger.verify()
    assert report.ok and report.entries == 5
    entries = wh.ledger.entries()
    assert entries[0].prev_hash == GENESIS
    assert len(entries) > 1, "nothing to check"
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev_hash == before.hash
        assert entry_hash(after.hashed_fields(), before.hash) == after.hash
    assert report.head == entries[-1].hash == wh.ledger.head()[1]


def test_platform_connections_cannot_update_or_delete_entries(wh):
    with pytest.raises(INTEGRITY_ERRORS, match="append-only"), wh.meta.transaction() as tx:
        tx.execute("UPDATE ledger SET actor = 'x' WHERE seq = 1")
    with pytest.raises(INTEGRITY_ERRORS, match="append-only"), wh.meta.transaction() as tx:
        tx.execute("DELETE FROM ledger WHERE seq = 1")
    assert wh.ledger.verify().ok


def test_edited_entry_is_reported(wh):
    _tamper(wh, ("UPDATE ledger SET actor = 'user:mallory' WHERE seq = 3",))
    problem = wh.ledger.verify().problem
    assert (problem.kind, problem.seq) == ("edited", 3)


def test_edited_entry_with_recomputed_hash_is_reported(wh):
    row = _row(wh, 2)
    entry = [e for e in wh.ledger.entries() if e.seq == 2][0]
    forged = {**entry.hashed_fields(), "actor": "user:mallory"}
    _tamper(
        wh,
        (
            "UPDATE ledger SET actor = 'user:mallory', hash = ? WHERE seq = 2",
            (entry_hash(forged, row["prev_hash"]),),
        ),
    )
    problem = wh.ledger.verify().problem
    assert (problem.kind, problem.seq) == ("edited", 2)


def test_deleted_entry_is_reported(wh):
    _tamper(wh, ("DELETE FROM ledger WHERE seq = 4",))
    problem = wh.ledger.verify().problem
    assert (problem.kind, problem.seq) == ("deleted", 4)
    assert "entry 4 was deleted" in problem.message


def test_deleted_first_entry_is_reported(wh):
    _tamper(wh, ("DELETE FROM ledger WHERE seq = 1",))
    problem = wh.ledger.verify().problem
    assert (problem.kind, problem.seq) == ("deleted", 1)


def test_inserted_entry_with_a_valid_own_hash_is_reported(wh):
    first = _row(wh, 2)
    fields = {**wh.ledger.entries()[1].hashed_fields(), "actor": "user:mallory"}
    forged_hash = entry_hash(fields, first["prev_hash"])
    _tamper(
        wh,
        ("UPDATE ledger SET seq = seq + 100 WHERE seq >= 2",),
        ("UPDATE ledger SET seq = seq - 99 WHERE seq >= 100",),
        (
            "INSERT INTO ledger (seq, at, kind, actor, environment, run_id, code_version,"
            " params_json, assets_json, prev_hash, hash, state_json)"
            " VALUES (2,?,?,?,?,?,?,?,?,?,?,?)",
            (
                first["at"],
                first["kind"],
                "user:mallory",
                first["environment"],
                first["run_id"],
                first["code_version"],
                first["params_json"],
                first["assets_json"],
                first["prev_hash"],
                forged_hash,
                first["state_json"],
            ),
        ),
    )
    problem = wh.ledger.verify().problem
    assert (problem.kind, problem.seq) == ("inserted", 2)


def test_inserted_entry_with_a_made_up_hash_is_reported(wh):
    row = _row(wh, 3)
    _tamper(
        wh,
        ("UPDATE ledger SET seq = seq + 100 WHERE seq >= 3",),
        ("UPDATE ledger SET seq = seq - 99 WHERE seq >= 100",),
        (
            "INSERT INTO ledger (seq, at, kind, actor, environment, run_id, code_version,"
            " params_json, assets_json, prev_hash, hash) VALUES (3,?,?,?,?,?,?,?,?,?,?)",
            (
                row["at"],
                "access.denied",
                "user:mallory",
                None,
                None,
                None,
                "{}",
                "{}",
                "f" * 64,
                "e" * 64,
            ),
        ),
    )
    problem = wh.ledger.verify().problem
    assert (problem.kind, problem.seq) == ("inserted", 3)


def test_reordered_entries_are_reported(wh):
    _tamper(
        wh,
        ("UPDATE ledger SET seq = 100 WHERE seq = 2",),
        ("UPDATE ledger SET seq = 2 WHERE seq = 3",),
        ("UPDATE ledger SET seq = 3 WHERE seq = 100",),
    )
    problem = wh.ledger.verify().problem
    assert (problem.kind, problem.seq) == ("reordered", 2)


def test_truncated_tail_is_reported_against_a_kept_head(wh):
    _, kept_head = wh.ledger.head()
    assert wh.ledger.verify(expected_head=kept_head).ok
    _tamper(wh, ("DELETE FROM ledger WHERE seq = 5",))
    assert wh.ledger.verify().ok  # a bare chain cannot see a cut tail ...
    # ... a head kept elsewhere can
    assert wh.ledger.verify(expected_head=kept_head).problem.kind == "truncated"


def test_bad_entries_are_refused_and_nothing_is_written(wh):
    with pytest.raises(InvalidLedgerEntry):
        wh.ledger.append("Not A Kind", actor="user:a", environment=None)
    with pytest.raises(InvalidLedgerEntry):
        wh.ledger.append("release.published", actor="", environment=None)
    assert wh.ledger.head()[0] == 5


def test_entries_filter_by_asset_since_kind_and_run(wh):
    wh.ledger.append("access.denied", actor="user:x", environment="prod", assets={"customers": ""})
    assert [e.seq for e in wh.ledger.entries(asset="customers")] == [6]
    assert len(wh.ledger.entries(asset="raw/orders")) == 5
    assert [e.seq for e in wh.ledger.entries(kind="access.denied")] == [6]
    assert [e.seq for e in wh.ledger.entries(run_id="run-2")] == [2]
    assert wh.ledger.entries(since="2999-01-01") == []
    assert len(wh.ledger.entries(since="2000-01-01T00:00:00")) == 6


def _write(wh, asset, sql):
    con = duckdb.connect()
    try:
        return wh.versions.write_query(con, asset, sql, environment="staging", run_id="build")
    finally:
        con.close()


def test_failed_publish_leaves_no_ledger_entry(tmp_path, monkeypatch):
    wh = new_warehouse(tmp_path / "warehouse")
    wh.commit_pointers("staging", {"raw/t": _write(wh, "raw/t", "SELECT 1 AS id")}, run_id="b")

    def crash(*args, **kwargs):
        raise RuntimeError("injected")

    # Fail inside the publish transaction, just before prod's pointers move.
    monkeypatch.setattr(releases, "point_prod", crash)
    with pytest.raises(RuntimeError):
        wh.publish("staging", triggered_by="test")
    monkeypatch.undo()
    assert [e.kind for e in wh.ledger.entries()] == [LedgerKind.POINTERS_COMMITTED]
    wh.publish("staging", triggered_by="test", run_id="run-p")
    wh.publish("staging", triggered_by="test")  # no change: no release, no entry
    [entry] = wh.ledger.entries(kind=LedgerKind.RELEASE_PUBLISHED)
    assert entry.run_id == "run-p"
    assert wh.ledger.verify().ok


def test_publish_entry_links_to_the_dagster_run_that_built_the_release(platform_home):
    wh = open_warehouse(platform_home)
    release = wh.releases.list()[-1]
    entry = wh.ledger.entries(kind=LedgerKind.RELEASE_PUBLISHED)[0]
    assert entry.params["release_id"] == release.release_id
    assert entry.environment == "prod" and entry.actor == release.triggered_by
    assert entry.assets == release.manifest  # first release: every asset changed
    assert entry.code_version
    run = open_instance(platform_home).get_run_by_id(entry.run_id)
    assert run is not None and run.tags["elt/environment"] == "staging"


@dg.op(config_schema={"root": str, "metadata": dg.Field(str, default_value="")})
def rollback_op(context: dg.OpExecutionContext) -> None:
    """Stands in for the promotion package's rollback run: the ledger must keep its run id."""
    wh = Warehouse(context.op_config["root"], metadata=context.op_config["metadata"] or None)
    wh.rollback(context.run.tags["elt/release"], actor="sensor:rollback", run_id=context.run_id)


@dg.job
def rollback_job():
    rollback_op()


def test_rollback_entry_links_to_its_dagster_run_and_its_tags(tmp_path):
    root = tmp_path / "warehouse"
    wh = new_warehouse(root)
    wh.commit_pointers("staging", {"raw/t": _write(wh, "raw/t", "SELECT 1 AS id")}, run_id="b1")
    first = wh.publish("staging", triggered_by="test").release
    v2 = _write(wh, "raw/t", "SELECT 2 AS id")
    wh.commit_pointers("staging", {"raw/t": v2}, run_id="b2")
    second = wh.publish("staging", triggered_by="test").release
    instance = open_instance(make_settings(tmp_path / "home"))
    result = rollback_job.execute_in_process(
        instance=instance,
        run_config={
            "ops": {"rollback_op": {"config": {"root": str(root), "metadata": wh.meta.url or ""}}}
        },
        tags={"elt/release": first.release_id, "elt/source_environment": "prod"},
    )
    assert result.success
    entry = wh.ledger.entries(kind=LedgerKind.RELEASE_ROLLED_BACK)[0]
    assert entry.run_id == result.run_id
    assert entry.params["release_id"] == first.release_id
    assert entry.params["previous_release"] == second.release_id
    assert entry.assets == {"raw/t": first.manifest["raw/t"]}
    run = instance.get_run_by_id(entry.run_id)
    assert run.tags["elt/release"] == entry.params["release_id"]
    assert wh.ledger.verify().ok


def test_audit_cli_verifies_and_logs_history(platform_home):
    proc = run_cli(platform_home, "audit", "verify", check=True)
    assert proc.stdout.startswith("ledger intact:")
    proc = run_cli(
        platform_home, "audit", "log", "--asset", "customers", "--since", "1d", check=True
    )
    assert "release.published" in proc.stdout
    bad = run_cli(platform_home, "audit", "log", "--since", "yesterday-ish")
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot read --since")


def test_audit_cli_verify_exits_1_naming_the_tampered_entry(tmp_path):
    settings = make_settings(tmp_path / "home")
    wh = Warehouse(settings.warehouse_dir, metadata=settings.metadata_url)
    for i in range(3):
        wh.ledger.append("sandbox.created", actor="user:a", environment=f"s{i}")
    _tamper(wh, ("UPDATE ledger SET environment = 'elsewhere' WHERE seq = 2",))
    proc = run_cli(settings, "audit", "verify")
    assert proc.returncode == 1
    assert "ledger tampered: entry 2 was edited" in proc.stdout
