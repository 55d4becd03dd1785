"""The demo's commands, plugged into `elt` (entry point group `elt_platform.cli`): `elt demo`
runs the main job end to end; `elt sources` writes the synthetic sources and serves the demo API."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from elt_demo import cli_demo, cli_sources

    app.add_typer(cli_sources.app, name="sources", help="Synthetic source data (demo).")
    cli_demo.register(app)
