import subprocess
import sys

import duckdb
import pytest

from elt_platform.environments import PROD
from elt_platform.errors import (
    EnvironmentBusy,
    EnvironmentExists,
    NothingToPublish,
    UnknownEnvironment,
    UnknownRelease,
    WriteNotAllowed,
)
from elt_platform.store import releases
from elt_platform.store.locks import EnvironmentLocks
from elt_platform_tests.conftest import new_warehouse


@pytest.fixture
def wh(tmp_path):
    return new_warehouse(tmp_path / "warehouse")


def _write(wh, asset, sql, env="staging"):
    con = duckdb.connect()
    try:
        return wh.versions.write_query(con, asset, sql, environment=env, run_id="r1")
    finally:
        con.close()


def _prod_rows(wh, relation):
    con = wh.catalogs.connect(PROD)
    try:
        return con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    finally:
        con.close()


def test_same_content_gives_same_version_and_no_duplicate_files(wh):
    v1 = _write(wh, "raw/t", "SELECT range AS id FROM range(1000)")
    v2 = _write(wh, "raw/t", "SELECT range AS id FROM range(999, -1, -1)")  # same rows, other order
    assert v1.version_id == v2.version_id
    assert v2.reused and not v1.reused
    assert len(list((wh.root / "versions" / "raw__t").iterdir())) == 1
    assert not any((wh.root / "versions" / "_pending").iterdir())
    v3 = _write(wh, "raw/t", "SELECT range AS id FROM range(1001)")
    assert v3.version_id != v1.version_id and v3.rows == 1001


def test_versions_are_never_overwritten(wh):
    v1 = _write(wh, "raw/t", "SELECT 1 AS id")
    before = v1.path.read_bytes()
    _write(wh, "raw/t", "SELECT 2 AS id")
    assert v1.path.read_bytes() == before


def test_publish_makes_prod_point_at_staging_versions(wh):
    v = _write(wh, "raw/t", "SELECT range AS id FROM range(10)")
    wh.commit_pointers("staging", {"raw/t": v}, run_id="r1")
    result = wh.publish("staging", triggered_by="test")
    assert result.changed and result.release.manifest == {"raw/t": v.version_id}
    assert wh.environments.get(PROD).current_release == result.release.release_id
    assert _prod_rows(wh, "raw.t") == 10


def test_republishing_identical_content_changes_nothing(wh):
    v = _write(wh, "raw/t", "SELECT 1 AS id")
    wh.commit_pointers("staging", {"raw/t": v}, run_id="r1")
    first = wh.publish("staging", triggered_by="test")
    second = wh.publish("staging", triggered_by="test")
    assert not second.changed
    assert second.release.release_id == first.release.release_id
    assert len(wh.releases.list()) == 1


def test_failure_between_versions_and_publish_leaves_prod_on_old_release(wh, monkeypatch):
    v1 = _write(wh, "raw/t", "SELECT range AS id FROM range(5)")
    wh.commit_pointers("staging", {"raw/t": v1}, run_id="r1")
    old = wh.publish("staging", triggered_by="test").release
    v2 = _write(wh, "raw/t", "SELECT range AS id FROM range(50)")
    wh.commit_pointers("staging", {"raw/t": v2}, run_id="r2")

    def crash(*args, **kwargs):
        raise RuntimeError("injected failure before commit")

    # Fail inside the publish transaction, just before prod's pointers move.
    monkeypatch.setattr(releases, "point_prod", crash)
    with pytest.raises(RuntimeError, match="injected"):
        wh.publish("staging", triggered_by="test")
    monkeypatch.undo()
    assert wh.releases.current().release_id == old.release_id
    assert [r.release_id for r in wh.releases.list()] == [old.release_id]
    assert wh.environments.pointers(PROD) == {"raw/t": v1.version_id}
    assert _prod_rows(wh, "raw.t") == 5


def test_stale_prod_catalog_is_repaired_on_open(wh):
    v1 = _write(wh, "raw/t", "SELECT range AS id FROM range(5)")
    wh.commit_pointers("staging", {"raw/t": v1}, run_id="r1")
    wh.publish("staging", triggered_by="test")
    v2 = _write(wh, "raw/t", "SELECT range AS id FROM range(7)")
    wh.commit_pointers("staging", {"raw/t": v2}, run_id="r2")
    # Simulate a crash after the metadata commit but before the catalog swap.
    wh.releases.publish({"raw/t": v2.version_id}, source_environment="staging", triggered_by="t")
    assert _prod_rows(wh, "raw.t") == 7


def test_rollback_restores_previous_release(wh):
    v1 = _write(wh, "raw/t", "SELECT range AS id FROM range(3)")
    wh.commit_pointers("staging", {"raw/t": v1}, run_id="r1")
    first = wh.publish("staging", triggered_by="test").release
    v2 = _write(wh, "raw/t", "SELECT range AS id FROM range(4)")
    wh.commit_pointers("staging", {"raw/t": v2}, run_id="r2")
    wh.publish("staging", triggered_by="test")
    assert _prod_rows(wh, "raw.t") == 4
    wh.rollback(first.release_id, actor="test")
    assert _prod_rows(wh, "raw.t") == 3
    with pytest.raises(UnknownRelease):
        wh.rollback("r9999-deadbeef", actor="test")
    assert _prod_rows(wh, "raw.t") == 3


def test_prod_pointers_cannot_be_set_directly(wh):
    v = _write(wh, "raw/t", "SELECT 1 AS id")
    with pytest.raises(WriteNotAllowed):
        wh.commit_pointers(PROD, {"raw/t": v}, run_id="r1")
    assert wh.environments.pointers(PROD) == {}


def test_publishing_an_empty_environment_is_refused(wh):
    with pytest.raises(NothingToPublish):
        wh.publish("staging", triggered_by="test")
    assert wh.releases.current() is None


def test_unknown_and_duplicate_environments(wh):
    with pytest.raises(UnknownEnvironment):
        wh.environments.pointers("nosuch")
    wh.environments.create_sandbox("alice", owner="alice@example.com")
    with pytest.raises(EnvironmentExists):
        wh.environments.create_sandbox("alice")
    assert [r.name for r in wh.environments.list()] == ["prod", "staging", "alice"]


def test_environment_lock_is_exclusive_across_holders(tmp_path):
    first = EnvironmentLocks(tmp_path)
    second = EnvironmentLocks(tmp_path)
    first.acquire("staging", "run-a")
    with pytest.raises(EnvironmentBusy, match="run-a"):
        second.acquire("staging", "run-b")
    second.acquire("alice", "run-b")  # other environments are independent
    first.release_all()
    second.acquire("staging", "run-b")
    second.release_all()


HOLDER = """
import sys, time
from elt_platform.store.warehouse import Warehouse

wh = Warehouse(sys.argv[1], metadata=sys.argv[2] or None)
wh.locks.acquire(sys.argv[3], holder="run on machine-a")
print("LOCKED", flush=True)
time.sleep(120)
"""


def test_locking_many_environments_takes_all_or_none(wh):
    """A busy environment held by another process fails the whole set, naming its holder, and
    leaves none of the others taken (flock here; advisory locks under `make test-scale`)."""
    envs = [f"sb{i}" for i in range(6)]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(wh.root), wh.meta.url or "", "sb4"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(
            EnvironmentBusy,
            match=rf"'sb4' is being written by run on machine-a \(pid {holder.pid}\b",
        ):
            wh.locks.acquire_all(envs, "retention")
        other = new_warehouse(wh.root)  # another holder: would be refused if any lock leaked
        other.locks.acquire_all([e for e in envs if e != "sb4"], "run-b")
        other.locks.release_all()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    wh.locks.acquire_all(envs, "retention")
    wh.locks.acquire("sb2", "retention")  # re-entry by the same holder
    with pytest.raises(EnvironmentBusy, match="'sb5' is being written by retention"):
        new_warehouse(wh.root).locks.acquire_all(["sb5"], "run-b")
    wh.locks.release_all()
    other.locks.acquire_all(envs, "run-b")  # all released together
    other.locks.release_all()
