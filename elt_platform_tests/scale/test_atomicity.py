"""Transactions that are atomic on SQLite are atomic on PostgreSQL: a failure injected inside the
publish transaction, before it commits, leaves prod on its release with no ledger entry; the kill -9
version of this test (promotion/test_kill9.py) runs on PostgreSQL under `make test-scale` too."""

from __future__ import annotations

import duckdb
import pytest

from elt_platform.environments import PROD
from elt_platform.store import releases
from elt_platform.store.ledger import LedgerKind
from elt_platform.store.warehouse import Warehouse

pytestmark = pytest.mark.scale


def _stage(wh: Warehouse, rows: int) -> dict[str, str]:
    con = duckdb.connect()
    try:
        versions = {
            a: wh.versions.write_query(
                con, a, f"SELECT range AS id FROM range({rows + i})", environment="staging"
            )
            for i, a in enumerate(["raw/a", "raw/b", "m"])
        }
    finally:
        con.close()
    wh.commit_pointers("staging", versions, run_id=f"build-{rows}")
    return {a: v.version_id for a, v in versions.items()}


@pytest.mark.parametrize("step", ["point_prod", "ledger_entry"])
def test_a_failure_before_commit_leaves_prod_on_its_release(tmp_path, pg_url, monkeypatch, step):
    wh = Warehouse(tmp_path / "wh", metadata=pg_url)
    assert wh.meta.dialect == "postgresql"
    _stage(wh, 10)
    old = wh.publish("staging", triggered_by="test").release
    ledger_before = wh.ledger.entries()
    new_manifest = _stage(wh, 100)
    releases_before = wh.releases.list()

    def crash(*args, **kwargs):
        raise RuntimeError("injected")

    if step == "point_prod":  # the release row is written, prod's pointers not yet moved
        monkeypatch.setattr(releases, "point_prod", crash)
    else:  # everything written; the ledger entry (the transaction's last write) fails
        monkeypatch.setattr(wh.ledger, "_append", crash)
    with pytest.raises(RuntimeError, match="injected"):
        wh.publish("staging", triggered_by="test")
    monkeypatch.undo()

    fresh = Warehouse(tmp_path / "wh", metadata=pg_url)  # what any other process reads
    assert fresh.releases.current().release_id == old.release_id
    assert fresh.environments.pointers(PROD) == old.manifest
    assert [r.release_id for r in fresh.releases.list()] == [r.release_id for r in releases_before]
    assert len(fresh.ledger.entries()) == len(ledger_before) + 1  # the staging commit only
    assert fresh.ledger.entries()[-1].kind == LedgerKind.POINTERS_COMMITTED
    assert fresh.ledger.verify().ok
    # And the next promotion completes.
    fresh.publish("staging", triggered_by="test")
    assert fresh.releases.current().manifest == new_manifest
    assert fresh.ledger.verify().ok


WRITER = """
import sys
from elt_platform.store.warehouse import Warehouse

wh = Warehouse(sys.argv[1], metadata=sys.argv[2])
for i in range(25):
    wh.ledger.append("sandbox.created", actor=f"user:{sys.argv[3]}", environment=f"s{i}")
"""


def test_concurrent_writers_on_other_machines_keep_the_ledger_chain_whole(tmp_path, pg_url):
    """Writers are serialised as SQLite's BEGIN IMMEDIATE serialises them: three processes (each
    with its own warehouse folder) appending at once leave one unbroken hash chain."""
    import subprocess
    import sys

    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / f"m{n}"), pg_url, str(n)])
        for n in range(3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    wh = Warehouse(tmp_path / "reader", metadata=pg_url)
    entries = wh.ledger.entries()
    assert [e.seq for e in entries] == list(range(1, 76))
    assert {e.actor for e in entries} == {"user:0", "user:1", "user:2"}
    assert wh.ledger.verify().ok
