"""`elt gc` removes what killed writers left in `versions/_pending` once it is older than the
grace period, and nothing a writer may still be using."""

from __future__ import annotations

import os
import time

from elt_platform_tests.conftest import run_cli
from elt_platform_tests.governance.conftest import copy_installation


def test_gc_removes_stale_pending_files_and_keeps_fresh_ones(platform_home, tmp_path):
    home = copy_installation(platform_home, tmp_path / "home")
    pending = home.warehouse_dir / "versions" / "_pending"
    pending.mkdir(parents=True, exist_ok=True)
    stale_file, stale_dir, fresh = (
        pending / "dead.parquet",
        pending / "deadbeef",
        pending / "x.parquet",
    )
    stale_file.write_bytes(b"PAR1 left by kill -9")
    stale_dir.mkdir()
    (stale_dir / "part-1.parquet").write_bytes(b"PAR1")
    fresh.write_bytes(b"PAR1 being written")
    old = time.time() - 3 * 24 * 3600  # well past the grace period (gc_grace_hours: 1)
    for path in (stale_file, stale_dir / "part-1.parquet", stale_dir):
        os.utime(path, (old, old))
    dry = run_cli(home, "gc", "--dry-run", check=True)
    assert "would remove 2 stale pending files" in dry.stdout and stale_file.exists()
    proc = run_cli(home, "gc", check=True)
    assert "removed 2 stale pending files" in proc.stdout
    assert not stale_file.exists() and not stale_dir.exists() and fresh.exists()
