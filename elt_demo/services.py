"""A throwaway PostgreSQL server for the scale profile (`make test-scale`, its tests): a fresh
cluster from Debian's `postgresql` package on 127.0.0.1 on a free port, recorded in
`<dir>/services.json` and stopped by PID.

    python -m elt_demo.services up DIR      # prints ELT_TEST_POSTGRES_URL=... to export
    python -m elt_demo.services down DIR    # stops what `up` started in DIR
    python -m elt_demo.services run DIR -- CMD ...   # up, run CMD with the URL set, down (always)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "services.json"
URL_VAR = "ELT_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class Service:
    name: str
    pid: int
    url: str  # the superuser URL of database `postgres`
    log: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    return candidates[-1]


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # The server refuses to run as root: run it as the Debian package's `postgres` user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start_postgres(root: Path) -> Service:
    """A fresh cluster (C locale, password auth over TCP, durability off: test data only) on a
    free port. The superuser `postgres` has the password `postgres`."""
    bin_dir = postgres_bin()
    base = root / "postgres"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(base, "postgres", "postgres")
    base.chmod(0o700)
    data, log, port = base / "data", base / "server.log", free_port()
    pwfile = base / "pw"
    pwfile.write_text("postgres\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres", "postgres")
    subprocess.run(
        _as_postgres_user(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile)]
            + ["-A", "scram-sha-256", "--auth-local", "trust", "-E", "UTF8", "--no-locale"]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c max_connections=400"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        _as_postgres_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options]
            + ["start"]
        ),
        check=True,
        capture_output=True,
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    url = f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
    return Service("postgres", pid, url, str(log))


def stop(service: Service, timeout: float = 20.0) -> None:
    """Stop the server by its PID (SIGINT: fast shutdown), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(service.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(service.pid):
        time.sleep(0.1)
    if _alive(service.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(service.pid, signal.SIGKILL)


def up(root: Path) -> Service:
    """Start the server, recording it as soon as it runs (so `down` finds it)."""
    root.mkdir(parents=True, exist_ok=True)
    down(root)  # a server left by an interrupted earlier session
    service = start_postgres(root)
    (root / STATE_FILE).write_text(json.dumps([asdict(service)], indent=1))
    return service


def down(root: Path) -> list[Service]:
    state = root / STATE_FILE
    if not state.exists():
        return []
    services = [Service(**s) for s in json.loads(state.read_text())]
    for service in reversed(services):
        stop(service)
    state.unlink()
    return services


@contextlib.contextmanager
def running(root: Path) -> Iterator[Service]:
    """A server for the duration of a block; stopped by PID even when it raises."""
    try:
        yield up(root)
    finally:
        down(root)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):  # a child of ours lingers until reaped
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in {"up", "down", "run"}:
        raise SystemExit(__doc__)
    root = Path(args[1]).resolve()
    if args[0] == "down":
        for service in down(root):
            print(f"stopped {service.name} (pid {service.pid})", file=sys.stderr)
        return 0
    if args[0] == "up":
        print(f"{URL_VAR}={up(root).url}")
        return 0
    command = args[args.index("--") + 1 :] if "--" in args else []
    if not command:
        raise SystemExit("run DIR -- COMMAND ...")

    def terminate(signum, frame):
        raise SystemExit(128 + signum)  # unwinds through `running`, which stops the server

    signal.signal(signal.SIGTERM, terminate)
    with running(root) as service:
        print(f"PostgreSQL {service.url} (pid {service.pid})", file=sys.stderr)
        env = {**os.environ, URL_VAR: service.url}
        proc = subprocess.Popen(command, env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
