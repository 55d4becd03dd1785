"""The demo's commands, plugged into `elt` (entry point group `elt_platform.cli`): `elt demo`
runs the main job end to end; `elt sources` writes the synthetic sources and serves the demo API;
`elt dev` also serves the demo API (a dev service) so UI runs of `raw/payments` find it."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from elt_demo import cli_demo, cli_sources
    from elt_demo.dev_service import demo_dev_service
    from elt_platform.cli.dev import add_dev_service

    app.add_typer(cli_sources.app, name="sources", help="Synthetic source data (demo).")
    cli_demo.register(app)
    add_dev_service("the demo payments API", demo_dev_service)
