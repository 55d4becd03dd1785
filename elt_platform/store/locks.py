"""Exclusive per-environment write locks (fcntl), released by the kernel if the holder dies."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from elt_platform.errors import EnvironmentBusy


@dataclass
class EnvironmentLocks:
    """Holds the locks one process (one run) has taken, until `release_all`."""

    lock_dir: Path
    _held: dict[str, IO[str]] = field(default_factory=dict)

    def acquire(self, environment: str, holder: str) -> None:
        """Take the write lock for `environment` or fail at once naming the current holder."""
        if environment in self._held:
            return
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        path = self.lock_dir / f"{environment}.lock"
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
        self._held[environment] = handle

    def ensure_free(self, environment: str) -> None:
        """Fail fast (before launching a run) if another process is writing `environment`."""
        if environment in self._held:
            return
        self.acquire(environment, holder="probe")
        self._held.pop(environment).close()

    def release_all(self) -> None:
        for handle in self._held.values():
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
        self._held.clear()


def _describe(raw: str) -> str:
    try:
        info = json.loads(raw)
        return f"{info['holder']} (pid {info['pid']})"
    except (ValueError, KeyError, TypeError):
        return "another process"
