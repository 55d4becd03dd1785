"""`elt dev`: run the Dagster webserver and daemon on 127.0.0.1 against the project-local home.

Packages beside the platform (the demo) add the services their assets need through
`add_dev_service` from their `elt_platform.cli` plugin: each is a context manager entered before
Dagster starts, yielding environment variables for the code location (the demo serves its
payments API on a free port and hands over its URL and a generated token). The webserver stamps
the caller's identity on runs launched without identity tags (`orchestration/launch_guard.py`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import typer
from rich.console import Console

from elt_platform.settings import REPO_ROOT, Settings, load_settings

console = Console()

DevService = Callable[[Settings], AbstractContextManager[Mapping[str, str]]]
_services: list[tuple[str, DevService]] = []


def add_dev_service(name: str, service: DevService) -> None:
    """Run `service` for as long as `elt dev` runs; the variables it yields reach the code
    location (webserver, daemon and the runs they launch)."""
    if name not in {n for n, _ in _services}:
        _services.append((name, service))


def register(app: typer.Typer) -> None:
    app.command("dev")(dev)


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def dev(
    port: int = typer.Option(3000, envvar="ELT_PORT", help="Webserver port on 127.0.0.1."),
) -> None:
    """Prepare the dbt manifest once, start the plugins' services, then run dagster-webserver and
    dagster-daemon until Ctrl-C (or `make dev-stop`)."""
    from elt_platform.access.facade import open_warehouse
    from elt_platform.access.identity import current_identity
    from elt_platform.orchestration.instance import open_instance
    from elt_platform.orchestration.launch_guard import UI_IDENTITY_ENV
    from elt_platform.orchestration.partitions import sync_environment_partitions
    from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
    from elt_platform.project.project_file import load_policies

    settings = load_settings()
    prepare_manifest(load_dbt_project(settings))
    instance = open_instance(settings)
    sync_environment_partitions(
        instance, [r.name for r in open_warehouse(settings).environments.list()]
    )
    identity = current_identity(load_policies(settings))
    pid_file = settings.home / "dev.pid"
    with ExitStack() as services:
        extra: dict[str, str] = {}
        for name, service in _services:
            extra.update(services.enter_context(service(settings)))
            console.print(f"started {name}")
        env = {
            **os.environ,
            **extra,
            "DAGSTER_HOME": str(settings.dagster_home),
            "ELT_HOME": str(settings.home),
        }
        env.pop("DAGSTER_IS_DEV_CLI", None)  # it would make dagster-dbt re-parse in every process
        env.pop(UI_IDENTITY_ENV, None)
        # Only the webserver stamps the caller's identity: the daemon's own runs (sensors,
        # schedules) carry theirs, and anything else untagged stays least-privileged.
        web_env = {**env, UI_IDENTITY_ENV: json.dumps(identity.tags())}
        workspace = str(REPO_ROOT / "workspace.yaml")
        procs = [
            subprocess.Popen(
                [_bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace],
                env=web_env,
                cwd=REPO_ROOT,
                preexec_fn=_default_signals,
            ),
            subprocess.Popen(
                [_bin("dagster-daemon"), "run", "-w", workspace],
                env=env,
                cwd=REPO_ROOT,
                preexec_fn=_default_signals,
            ),
        ]
        # This process first (SIGINT stops everything), then its children for `make dev-stop`
        # to clean up should this one be gone.
        pid_file.write_text("".join(f"{p}\n" for p in [os.getpid(), *(p.pid for p in procs)]))
        console.print(
            f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={settings.dagster_home}); "
            f"UI launches without identity tags act as {identity.user} ({identity.role}); "
            f"stop with Ctrl-C or `make dev-stop` (pid {os.getpid()})",
            highlight=False,
        )

        def stop(signum, frame):  # noqa: ARG001
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for proc in procs:
                proc.wait()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            pid_file.unlink(missing_ok=True)


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
