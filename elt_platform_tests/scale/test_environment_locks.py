"""Environment write locks are PostgreSQL advisory locks when the metadata store is there: two
processes with different warehouse folders (two machines: no shared lock file) cannot write one
environment at once; the second gets the same EnvironmentBusy as with flock; a killed holder's
lock is released with its connection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from elt_platform.errors import EnvironmentBusy
from elt_platform.store.warehouse import Warehouse

pytestmark = pytest.mark.scale

HOLDER = textwrap.dedent(
    """
    import sys, time
    from elt_platform.store.warehouse import Warehouse

    wh = Warehouse(sys.argv[1], metadata=sys.argv[2])
    wh.locks.acquire("staging", holder="run on machine-a")
    print("LOCKED", flush=True)
    time.sleep(120)
    """
)

CONTENDER = textwrap.dedent(
    """
    import sys
    from elt_platform.errors import EnvironmentBusy
    from elt_platform.store.warehouse import Warehouse

    wh = Warehouse(sys.argv[1], metadata=sys.argv[2])
    try:
        wh.locks.acquire("staging", holder="run on machine-b")
    except EnvironmentBusy as exc:
        print("BUSY", exc.args[0], flush=True)
    else:
        print("ACQUIRED", flush=True)
        wh.locks.release_all()
    """
)


def _contend(root, url) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", CONTENDER, str(root), url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_two_processes_cannot_write_one_environment(tmp_path, pg_url):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "machine_a"), pg_url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        out = _contend(tmp_path / "machine_b", pg_url)
        assert out.startswith(
            "BUSY environment 'staging' is being written by run on machine-a (pid "
        ), out
        assert f"pid {holder.pid} on " in out
        # Another environment is free meanwhile.
        other = Warehouse(tmp_path / "machine_c", metadata=pg_url)
        other.locks.acquire("sandbox_x", holder="run on machine-c")
        other.locks.release_all()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock
        holder.wait(timeout=30)
    assert _contend(tmp_path / "machine_b", pg_url) == "ACQUIRED"


def test_in_process_the_second_holder_gets_environment_busy_as_with_flock(tmp_path, pg_url):
    first = Warehouse(tmp_path / "a", metadata=pg_url)
    second = Warehouse(tmp_path / "b", metadata=pg_url)
    first.locks.acquire("staging", holder="run one")
    try:
        with pytest.raises(EnvironmentBusy, match="being written by run one") as info:
            second.locks.acquire("staging", holder="run two")
        assert "wait for the other run" in str(info.value)  # the hint flock's error carries
        with pytest.raises(EnvironmentBusy):
            second.locks.ensure_free("staging")
    finally:
        first.locks.release_all()
    second.locks.ensure_free("staging")
    second.locks.acquire("staging", holder="run two")
    second.locks.release_all()
