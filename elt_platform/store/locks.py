"""Exclusive per-environment write locks, released if the holder dies: `flock` on a file beside
the warehouse (the default), or a PostgreSQL advisory lock when the metadata store is on
PostgreSQL (`store/postgres_locks.py`), so that writers on different machines exclude each other.

A launcher that locks an environment and then executes the run in-process (`elt build`) shares
its lock with that process: the run's own acquire re-enters it, so no other writer can slip in
between the launcher's check and the run's start. Any other holder, in this process or another,
is refused.

A holder that needs many environments at once (retention locks them all) takes them in one
`acquire_all`: all or none, and on PostgreSQL on one server session rather than one per
environment.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from elt_platform.errors import EnvironmentBusy

# Lock key (a lock file, or a URL and environment) -> (the handle holding the OS or server lock,
# holders in this process, shared in the process).
_PROCESS_LOCKS: dict[Any, tuple[Any, int, bool]] = {}
_GUARD = threading.Lock()


@dataclass
class EnvironmentLocks:
    """Holds the locks one holder (a run, a launcher) has taken, until `release_all`."""

    lock_dir: Path
    url: str | None = None  # the metadata store's PostgreSQL URL: advisory locks there
    _held: dict[str, Any] = field(default_factory=dict)

    def acquire(self, environment: str, holder: str, *, share_in_process: bool = False) -> None:
        """Take the write lock for `environment` or fail at once naming the current holder.
        `share_in_process`: a launcher lets the run it executes in this process re-enter it."""
        self.acquire_all([environment], holder, share_in_process=share_in_process)

    def acquire_all(
        self, environments: Iterable[str], holder: str, *, share_in_process: bool = False
    ) -> None:
        """Take the write locks of all `environments` or none (EnvironmentBusy naming the first
        busy one's holder, nothing left taken). On PostgreSQL one session holds them all."""
        wanted = [e for e in dict.fromkeys(environments) if e not in self._held]
        with _GUARD:
            keys = {e: self._key(e) for e in wanted}
            for environment in wanted:  # refuse before taking anything
                entry = _PROCESS_LOCKS.get(keys[environment])
                if entry is not None and not entry[2]:
                    raise EnvironmentBusy(
                        f"environment {environment!r} is being written by {_holder_of(entry[0])}"
                    )
            fresh = [e for e in wanted if keys[e] not in _PROCESS_LOCKS]
            handles = self._take(fresh, keys, holder)
            for environment in wanted:
                key = keys[environment]
                if environment in handles:
                    _PROCESS_LOCKS[key] = (handles[environment], 1, share_in_process)
                else:  # re-entering a lock shared in this process
                    handle, count, shared = _PROCESS_LOCKS[key]
                    _PROCESS_LOCKS[key] = (handle, count + 1, shared)
                self._held[environment] = key

    def _take(self, environments: list[str], keys: dict[str, Any], holder: str) -> dict[str, Any]:
        """The OS or server locks of `environments`, all or none."""
        if not environments:
            return {}
        if self.url is not None:
            # Imported only with a PostgreSQL URL: psycopg2 comes with the `scale` extra.
            from elt_platform.store.postgres_locks import lock_environments

            locks = lock_environments(self.url, environments, holder)
            return {lock.environment: lock for lock in locks}
        taken: dict[str, Any] = {}
        try:
            for environment in environments:
                taken[environment] = _flock(keys[environment], environment, holder)
        except BaseException:
            for handle in taken.values():
                _unflock(handle)
            raise
        return taken

    def _key(self, environment: str) -> Any:
        if self.url is not None:
            return (self.url, environment)
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        return (self.lock_dir / f"{environment}.lock").resolve()

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
        key = self._held.pop(environment)
        with _GUARD:
            handle, count, shared = _PROCESS_LOCKS[key]
            if count > 1:
                _PROCESS_LOCKS[key] = (handle, count - 1, shared)
                return
            del _PROCESS_LOCKS[key]
            if isinstance(key, Path):
                _unflock(handle)
            else:
                handle.release()


def _flock(path: Path, environment: str, holder: str) -> IO[str]:
    handle = open(path, "a+")  # noqa: SIM115 - kept open while the lock is held
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        current = _holder_of(handle)
        handle.close()
        raise EnvironmentBusy(
            f"environment {environment!r} is being written by {current}"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"holder": holder, "pid": os.getpid()}))
    handle.flush()
    return handle


def _unflock(handle: IO[str]) -> None:
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    handle.close()


def _holder_of(handle: Any) -> str:
    if not hasattr(handle, "seek"):
        return handle.describe()  # an advisory lock held in this process
    handle.seek(0)
    return _describe(handle.read())


def _describe(raw: str) -> str:
    try:
        info = json.loads(raw)
        return f"{info['holder']} (pid {info['pid']})"
    except (ValueError, KeyError, TypeError):
        return "another process"
