"""The warm process (`elt warm start`): imports Dagster, dbt and the platform once, then forks one
child per `elt` or `elt-dbt` command it is handed (`warm_client.py`).

Nothing but imports happens before a fork: no settings are read, no connection or thread pool is
opened, no command-line module (whose consoles look at the terminal when created) is imported,
so each child starts as a fresh process would, minus the imports. The loop is single-threaded:
it accepts commands, starts their children, and reports each child's exit code to the client
that handed it over; a client that disconnects has its command's process terminated.

If a loaded module's file changes (the platform was edited or upgraded) the process refuses
further commands and exits; those commands run cold, as they would without it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from pathlib import Path

from elt_platform.warm_client import (
    PROTOCOL,
    private_folder_ok,
    recv_exactly,
    send_message,
    socket_path,
)

# Heavy, environment-neutral imports every build pays for. No `elt_platform.cli` module: their
# rich consoles decide colour and width from the terminal they are created on.
PRELOAD = (
    "elt_platform.assembly",
    "elt_platform.launch.runs",
    "elt_platform.launch.staging",
    "elt_platform.launch.plans",
    "elt_platform.sandboxes.env_diff",
    "dagster_dbt",
    # What Dagster imports only when a run opens its instance (SQLite storage, migrations check,
    # the file watcher): ~0.7 s of every build otherwise.
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "alembic.command",
    "watchdog.observers",
    "upath",
    "sqlglot",
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "dbt.task.build",
    "typer",
    "rich.console",
    "rich.table",
)
MAX_REQUEST = 4 * 1024 * 1024


def preload() -> list[str]:
    loaded = []
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
            loaded.append(name)
    return loaded


def _module_files() -> dict[str, float]:
    files = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and path.endswith(".py"):
            with contextlib.suppress(OSError):
                files[path] = os.stat(path).st_mtime
    return files


class WarmServer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()
        self.served = 0
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.files: dict[str, float] = {}

    # -- set-up -----------------------------------------------------------------------------
    def listen(self) -> None:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not private_folder_ok(folder):
            raise SystemExit(f"refusing to listen in {folder}: it must be yours and mode 0700")
        if self.path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
                raise SystemExit(f"a warm process already listens on {self.path}")
            except OSError:
                self.path.unlink()  # left by a process that died
            finally:
                probe.close()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop_signal)
        signal.signal(signal.SIGINT, self._stop_signal)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")

    def _stop_signal(self, *_: object) -> None:
        self.stopping = True

    # -- loop -------------------------------------------------------------------------------
    def serve(self) -> None:
        self.files = _module_files()
        try:
            while True:
                if self.stopping:
                    self._stop_listening()  # commands already running still finish and report
                    if not self.children:
                        break
                for key, _ in self.selector.select(timeout=1.0):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            self.wake_r.recv(4096)
                    else:
                        self._client_gone(key.fileobj, key.data)
                self._reap()
        finally:
            self.close()

    def close(self) -> None:
        self._stop_listening()

    def _stop_listening(self) -> None:
        if self.listener.fileno() == -1:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.listener)
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.listener.close()

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(True)
        conn.settimeout(5.0)
        fds: list[int] = []
        try:
            message, fds = self._read_request(conn)
            self._dispatch(conn, message, fds)
        except Exception as exc:  # a bad request never stops the process
            with contextlib.suppress(OSError):
                send_message(conn, {"error": f"{type(exc).__name__}: {exc}"})
            conn.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _read_request(self, conn: socket.socket) -> tuple[dict, list[int]]:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            raise PermissionError("commands are taken from this user only")
        data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
        if len(data) < 4:
            data = recv_exactly(conn, 4, data)
        (size,) = struct.unpack("!I", data[:4])
        if size > MAX_REQUEST:
            raise ValueError("request too large")
        body = recv_exactly(conn, size + 4, data)[4:]
        import json

        return json.loads(body), fds

    def _dispatch(self, conn: socket.socket, message: dict, fds: list[int]) -> None:
        kind = message.get("kind")
        if message.get("protocol") != PROTOCOL:
            send_message(conn, {"notice": "warm process speaks another protocol; ran cold"})
        elif kind == "ping":
            send_message(conn, self.status())
        elif kind == "stop":
            self.stopping = True
            send_message(conn, {"stopped": os.getpid()})
        elif kind in ("elt", "dbt"):
            refusal = self._refusal(message, fds)
            if refusal:
                send_message(conn, {"notice": refusal})
            else:
                self._fork(conn, message, fds)
                return
        else:
            send_message(conn, {"error": f"unknown request {kind!r}"})
        conn.close()

    def status(self) -> dict:
        return {
            "pid": os.getpid(),
            "socket": str(self.path),
            "prefix": sys.prefix,
            "started": self.started,
            "served": self.served,
            "running": len(self.children),
        }

    def _refusal(self, message: dict, fds: list[int]) -> str | None:
        if message.get("prefix") != sys.prefix or message.get("path") != sys.path[1:]:
            # Another interpreter, or another PYTHONPATH: the modules it would run are not ours.
            return "the warm process imports from other paths (another PYTHONPATH?); ran cold"
        if len(fds) != 3:
            return "standard streams were not passed; ran cold"
        changed = [p for p, m in self.files.items() if _mtime(p) != m]
        if changed:
            self.stopping = True
            return (
                f"the warm process stopped: {Path(changed[0]).name} changed since it started "
                "(run `elt warm start` again); ran cold"
            )
        return None

    def _fork(self, conn: socket.socket, message: dict, fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            self._child(conn, message, fds)  # never returns
        self.served += 1
        self.children[pid] = conn
        self.selector.register(conn, selectors.EVENT_READ, pid)
        try:
            send_message(conn, {"pid": pid})
        except OSError:
            self._client_gone(conn, pid)

    def _client_gone(self, conn: socket.socket, pid: int) -> None:
        """The client hung up before its command finished: do not leave the command running."""
        if pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn)
            with contextlib.suppress(OSError):
                send_message(conn, {"exit": os.waitstatus_to_exitcode(status)})
            conn.close()

    # -- the command's process ----------------------------------------------------------------
    def _child(self, conn: socket.socket, message: dict, fds: list[int]) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for other in (self.listener, self.wake_r, self.wake_w, conn, *self.children.values()):
                other.close()
            self.selector.close()
            _adopt_streams(fds)
            os.chdir(message["cwd"])
            os.environ.clear()
            os.environ.update(message["env"])
            os.umask(int(message.get("umask", 0o022)))
            code = _run(message["kind"], list(message["argv"]))
        except SystemExit as exc:
            code = _exit_code(exc)
        except KeyboardInterrupt:
            code = 130
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            # What a fresh interpreter does at exit (multiprocessing's clean-up, logging's
            # flush, ...): the handlers the imports registered, then this command's. Then leave
            # without unwinding into the server's loop.
            with contextlib.suppress(BaseException):
                atexit._run_exitfuncs()
            for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _adopt_streams(fds: list[int]) -> None:
    """The client's stdin, stdout and stderr become this process's fds 0-2 and Python streams
    (line-buffered on a terminal, as a fresh interpreter would make them)."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    fds.clear()
    encoding = {"encoding": "utf-8"} if os.environ.get("PYTHONUTF8") == "1" else {}
    sys.stdin = sys.__stdin__ = open(0, closefd=False, **encoding)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(  # noqa: SIM115
        1, "w", buffering=1 if os.isatty(1) else -1, closefd=False, **encoding
    )
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", buffering=1, closefd=False, errors="backslashreplace", **encoding
    )


def _run(kind: str, argv: list[str]) -> int:
    if kind == "dbt":
        sys.argv = ["elt-dbt", *argv]
        from elt_platform.dbt.executable import run_dbt

        return _exit_code(_catch(run_dbt, argv))
    sys.argv = ["elt", *argv]
    from elt_platform.cli import main

    return _exit_code(_catch(main, argv))


def _catch(fn, *args, **kwargs) -> SystemExit:
    try:
        result = fn(*args, **kwargs)
    except SystemExit as exc:
        return exc
    return SystemExit(result if isinstance(result, int) else 0)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> None:
    """`python -m elt_platform.warm.server [socket]`: preload, then serve until stopped."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else socket_path()
    loaded = preload()
    server = WarmServer(path)
    server.listen()
    print(f"warm process {os.getpid()} on {path}: preloaded {', '.join(loaded)}", flush=True)
    server.serve()


if __name__ == "__main__":
    main()
