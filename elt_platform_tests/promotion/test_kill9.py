"""kill -9 of a promoting process at any point: prod readers see the old or the new release,
never a mix, and the next promotion completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import duckdb
import pytest

from elt_platform.environments import PROD
from elt_platform_tests.conftest import new_warehouse

# The child process publishes and pauses at a chosen point so the test can SIGKILL it there.
CHILD = textwrap.dedent(
    """
    import sys, time, os
    from pathlib import Path
    from elt_platform.store.warehouse import Warehouse
    import elt_platform.store.catalog as catalog
    import elt_platform.store.releases as releases

    root, point = Path(sys.argv[1]), sys.argv[2]
    wh = Warehouse(root, metadata=sys.argv[3] or None)  # a PostgreSQL URL under test-scale

    def pause(*args):
        print("READY", flush=True)
        time.sleep(120)

    if point == "before_catalog_swap":
        catalog.os.replace = pause
    if point == "before_commit":
        releases.point_prod = pause  # inside the transaction, before prod moves
    wh.publish("staging", triggered_by="child")
    """
)


def _write(wh, asset, rows):
    con = duckdb.connect()
    try:
        return wh.versions.write_query(
            con, asset, f"SELECT range AS id FROM range({rows})", environment="staging"
        )
    finally:
        con.close()


def _stage(wh, rows):
    versions = {a: _write(wh, a, rows + i) for i, a in enumerate(["raw/a", "raw/b", "m"])}
    wh.commit_pointers("staging", versions, run_id=f"build-{rows}")
    return {a: v.version_id for a, v in versions.items()}


def _prod_view_rows(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            r: con.execute(f"SELECT count(*) FROM {r}").fetchone()[0]
            for r in ("raw.a", "raw.b", "main.m")
        }
    finally:
        con.close()


@pytest.mark.parametrize("point", ["before_commit", "before_catalog_swap"])
def test_kill_9_mid_promotion_leaves_old_or_new_release_never_a_mix(tmp_path, point):
    wh = new_warehouse(tmp_path / "wh")
    _stage(wh, 10)
    old = wh.publish("staging", triggered_by="test").release
    new_manifest = _stage(wh, 100)

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "wh"), point, wh.meta.url or ""],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "READY"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)

    # Readers of the catalog file as it is on disk: a complete release, never a mix.
    on_disk = _prod_view_rows(wh.catalogs.path(PROD))
    assert on_disk in (
        {"raw.a": 10, "raw.b": 11, "main.m": 12},
        {"raw.a": 100, "raw.b": 101, "main.m": 102},
    )
    current = wh.releases.current()
    if point == "before_commit":
        assert current.release_id == old.release_id  # the transaction never committed
        assert wh.environments.pointers(PROD) == old.manifest
    else:
        assert current.manifest == new_manifest  # committed; the catalog swap was interrupted
    # The next reader through the platform repairs a stale catalog to match the metadata store.
    con = wh.catalogs.connect(PROD)
    try:
        served = con.execute("SELECT count(*) FROM main.m").fetchone()[0]
    finally:
        con.close()
    assert served == (12 if current.release_id == old.release_id else 102)
    # And the next promotion completes.
    result = wh.publish("staging", triggered_by="test")
    assert wh.releases.current().manifest == new_manifest
    assert _prod_view_rows(wh.catalogs.path(PROD))["main.m"] == 102
    assert result.release.release_id == wh.releases.current().release_id


def test_volume_gate_fails_a_sudden_drop_and_respects_configured_tolerance():
    from elt_platform.checks.volume import check_volume
    from elt_platform.project.contracts.model import Volume

    assert not check_volume(500, 1_000, Volume(max_drop=0.3)).passed  # 50 % drop
    assert check_volume(800, 1_000, Volume(max_drop=0.3)).passed
    assert check_volume(500, 1_000, Volume(max_drop=0.6)).passed  # configured per asset
    assert not check_volume(3_000, 1_000, Volume(max_drop=0.3, max_growth=1.0)).passed
    assert check_volume(10, None, Volume()).passed  # nothing in prod yet
    assert "fell 50%" in check_volume(500, 1_000, Volume()).description
    # Prod's build counted rows retention has since removed: no baseline, nothing to compare.
    stale = check_volume(500, 1_000, Volume(max_drop=0.3), stale="raw/orders")
    assert stale.passed and "retention removed from raw/orders" in stale.description
