"""Exclusive per-environment write locks (fcntl), released by the kernel if the holder dies.

A launcher that locks an environment and then executes the run in-process (`elt build`) shares
its lock with that process: the run's own acquire re-enters it, so no other writer can slip in
between the launcher's check and the run's start. Any other holder, in this process or another,
is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from elt_platform.errors import EnvironmentBusy

# Lock file -> (open handle holding the flock, holders in this process, shared in the process).
_PROCESS_LOCKS: dict[Path, tuple[IO[str], int, bool]] = {}
_GUARD = threading.Lock()


@dataclass
class EnvironmentLocks:
    """Holds the locks one holder (a run, a launcher) has taken, until `release_all`."""

    lock_dir: Path
    _held: dict[str, Path] = field(default_factory=dict)

    def acquire(self, environment: str, holder: str, *, share_in_process: bool = False) -> None:
        """Take the write lock for `environment` or fail at once naming the current holder.
        `share_in_process`: a launcher lets the run it executes in this process re-enter it."""
        if environment in self._held:
            return
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        path = (self.lock_dir / f"{environment}.lock").resolve()
        with _GUARD:
            if path in _PROCESS_LOCKS:
                handle, count, shared = _PROCESS_LOCKS[path]
                if not shared:
                    handle.seek(0)
                    raise EnvironmentBusy(
                        f"environment {environment!r} is being written by "
                        f"{_describe(handle.read())}"
                    )
                _PROCESS_LOCKS[path] = (handle, count + 1, shared)
                self._held[environment] = path
                return
            handle = open(path, "a+")  # noqa: SIM115 - kept open while the lock is held
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                current = _describe(handle.read())
                handle.close()
                raise EnvironmentBusy(
                    f"environment {environment!r} is being written by {current}"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"holder": holder, "pid": os.getpid()}))
            handle.flush()
            _PROCESS_LOCKS[path] = (handle, 1, share_in_process)
            self._held[environment] = path

    def ensure_free(self, environment: str) -> None:
        """Fail fast (before launching a run) if another process is writing `environment`."""
        if environment in self._held:
            return
        self.acquire(environment, holder="probe")
        self._release(environment)

    def release_all(self) -> None:
        for environment in list(self._held):
            self._release(environment)

    def _release(self, environment: str) -> None:
        path = self._held.pop(environment)
        with _GUARD:
            handle, count, shared = _PROCESS_LOCKS[path]
            if count > 1:
                _PROCESS_LOCKS[path] = (handle, count - 1, shared)
                return
            del _PROCESS_LOCKS[path]
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


def _describe(raw: str) -> str:
    try:
        info = json.loads(raw)
        return f"{info['holder']} (pid {info['pid']})"
    except (ValueError, KeyError, TypeError):
        return "another process"
