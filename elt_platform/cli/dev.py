"""`elt dev`: run the Dagster webserver and daemon on 127.0.0.1 against the project-local home."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console

from elt_platform.access.facade import open_warehouse
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.settings import REPO_ROOT, load_settings

console = Console()


def register(app: typer.Typer) -> None:
    app.command("dev")(dev)


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def dev(
    port: int = typer.Option(3000, envvar="ELT_PORT", help="Webserver port on 127.0.0.1."),
) -> None:
    """Prepare the dbt manifest once, then run dagster-webserver and dagster-daemon until Ctrl-C."""
    # Start-up cost: Dagster is imported by this command only, not by `elt` itself.
    from elt_platform.orchestration.instance import open_instance
    from elt_platform.orchestration.partitions import sync_environment_partitions

    settings = load_settings()
    prepare_manifest(load_dbt_project(settings))
    instance = open_instance(settings)
    sync_environment_partitions(
        instance, [r.name for r in open_warehouse(settings).environments.list()]
    )
    env = {**os.environ, "DAGSTER_HOME": str(settings.dagster_home), "ELT_HOME": str(settings.home)}
    env.pop("DAGSTER_IS_DEV_CLI", None)  # it would make dagster-dbt re-parse in every process
    workspace = str(REPO_ROOT / "workspace.yaml")
    pid_file = settings.home / "dev.pid"
    procs = [
        subprocess.Popen(
            [_bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace],
            env=env,
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
    pid_file.write_text(f"{os.getpid()}\n")
    console.print(
        f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={settings.dagster_home}); "
        f"stop with Ctrl-C or `make dev-stop` (pid {os.getpid()})"
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
