"""Hand an `elt` or `elt-dbt` command to the warm process when one is running (`elt warm start`,
`elt_platform/warm/`); the entry points run it themselves when none is.

A command run by the warm process is the same command: a child forked from a process that has
already imported Dagster, dbt and the platform runs it with this process's arguments, working
directory, environment, umask and standard streams (passed as file descriptors), and its exit
code is this process's. Only the seconds of imports are saved. Standard library only: this module
is what every `elt` invocation imports first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import tempfile
from pathlib import Path

PROTOCOL = 1
OFF_VALUES = {"0", "off", "false", "no"}


def socket_path() -> Path:
    """Where the warm process of this Python installation listens (`ELT_WARM_SOCKET` overrides):
    one per user and virtual environment, in a folder only the user can enter."""
    explicit = os.environ.get("ELT_WARM_SOCKET")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    digest = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return Path(base) / f"elt-warm-{os.getuid()}" / f"{digest}.sock"


def private_folder_ok(folder: Path) -> bool:
    """True when `folder` belongs to this user and nobody else may enter it: a socket elsewhere
    could be someone else's process answering as ours."""
    try:
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IRWXG | stat.S_IRWXO)


def send_message(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    frame = struct.pack("!I", len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [frame], fds)
        sock.sendall(frame[sent:])
    else:
        sock.sendall(frame)


def recv_exactly(sock: socket.socket, size: int, head: bytes = b"") -> bytes:
    data = head
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def recv_message(sock: socket.socket) -> dict:
    (size,) = struct.unpack("!I", recv_exactly(sock, 4))
    return json.loads(recv_exactly(sock, size))


def connect(path: Path | None = None, timeout: float = 2.0) -> socket.socket | None:
    """A connection to the warm process, or None when none is running (or it is not safely ours)."""
    path = path or socket_path()
    if not path.exists() or not private_folder_ok(path.parent):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def request(kind: str, timeout: float = 5.0, path: Path | None = None) -> dict | None:
    """A control request (`ping`, `stop`); None when no warm process answers."""
    sock = connect(path, timeout)
    if sock is None:
        return None
    try:
        send_message(sock, {"kind": kind, "protocol": PROTOCOL})
        return recv_message(sock)
    except (OSError, ConnectionError, ValueError):
        return None
    finally:
        sock.close()


def run_warm(kind: str, argv: list[str]) -> int | None:
    """Run `elt <argv>` (kind "elt") or `dbt <argv>` (kind "dbt") in the warm process; its exit
    code, or None when no warm process took the command (then the caller runs it itself)."""
    if os.environ.get("ELT_WARM", "").strip().lower() in OFF_VALUES:
        return None
    sock = connect()
    if sock is None:
        return None
    umask = os.umask(0)
    os.umask(umask)
    message = {
        "kind": kind,
        "protocol": PROTOCOL,
        "argv": argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": umask,
        "prefix": sys.prefix,
        "path": sys.path[1:],  # [0] is the script's folder or the working directory
    }
    try:
        send_message(sock, message, fds=[0, 1, 2])
        reply = recv_message(sock)
    except (OSError, ConnectionError, ValueError):
        sock.close()
        return None  # nothing was started: run it here
    if "pid" not in reply:
        if reply.get("notice"):
            print(f"elt: {reply['notice']}", file=sys.stderr)
        sock.close()
        return None
    return _wait(sock, int(reply["pid"]))


def _wait(sock: socket.socket, pid: int) -> int:
    """Relay signals to the command's process until the warm process reports its exit code."""

    def relay(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, relay)
    sock.settimeout(None)
    while True:
        try:
            reply = recv_message(sock)
            break
        except InterruptedError:
            continue
        except (OSError, ConnectionError, ValueError):
            print("elt: the warm process went away before the command finished", file=sys.stderr)
            return 1
    sock.close()
    return int(reply.get("exit", 1))
