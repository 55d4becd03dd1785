"""`elt warm start|status|stop`: the long-lived process of the analyst's loop.

While it runs, every `elt` command and every dbt command the platform starts (`elt-dbt`) from
this Python environment skips the seconds of importing Dagster, dbt and the platform; what the
commands do, and what they are allowed to do, does not change (they run the same code, with the
caller's arguments, environment, working directory and identity).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime

import typer

from elt_platform import warm_client

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command()
def start(
    timeout: float = typer.Option(60.0, help="Seconds to wait for the process to be ready."),
) -> None:
    """Start the warm process (in the background) unless one is already running."""
    running = warm_client.request("ping")
    if running:
        typer.echo(f"warm process {running['pid']} already running on {running['socket']}")
        return
    path = warm_client.socket_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not warm_client.private_folder_ok(path.parent):
        typer.echo(f"error: {path.parent} must belong to you with mode 0700", err=True)
        raise typer.Exit(2)
    log = path.with_suffix(".log")
    began = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "elt_platform.warm.server", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command and the terminal's Ctrl-C
            env={**os.environ, "ELT_WARM": "off"},
        )
    while time.monotonic() - began < timeout:
        status = warm_client.request("ping")
        if status:
            took = time.monotonic() - began
            typer.echo(
                f"warm process {status['pid']} ready in {took:.1f} s on {path}: elt and dbt "
                "commands from this environment now start without re-importing the platform "
                "(`elt warm stop` stops it)"
            )
            return
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            typer.echo(f"error: the warm process exited at start: {tail[0]} (log: {log})", err=True)
            raise typer.Exit(2)
        time.sleep(0.1)
    proc.terminate()
    typer.echo(f"error: the warm process was not ready within {timeout:g} s (log: {log})", err=True)
    raise typer.Exit(2)


@app.command()
def status() -> None:
    """Say whether a warm process serves this environment (exit 1 when none does)."""
    running = warm_client.request("ping")
    if not running:
        typer.echo(f"no warm process is running (socket {warm_client.socket_path()})")
        raise typer.Exit(1)
    since = datetime.fromtimestamp(running["started"]).isoformat(timespec="seconds")
    typer.echo(
        f"warm process {running['pid']} on {running['socket']}: up since {since}, "
        f"{running['served']} commands served, {running['running']} running"
    )


@app.command()
def stop() -> None:
    """Stop the warm process; commands then run cold again."""
    answer = warm_client.request("stop")
    if not answer:
        typer.echo("no warm process is running")
        return
    pid = int(answer["stopped"])
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    typer.echo(f"warm process {pid} stopped")


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="warm", help="Keep the platform imported between commands (faster).")
