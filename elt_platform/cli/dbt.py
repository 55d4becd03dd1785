"""`elt dbt prepare`: parse the dbt project once so every process reuses the manifest."""

from __future__ import annotations

import typer
from rich.console import Console

from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.settings import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command("prepare")
def prepare(
    force: bool = typer.Option(False, help="Re-parse even if the manifest is fresh."),
) -> None:
    """Write profiles.yml and the manifest (re-parsed only when project files changed)."""
    cfg = load_dbt_project(load_settings())
    path = prepare_manifest(cfg, force=force)
    console.print(f"manifest ready: {path}")
