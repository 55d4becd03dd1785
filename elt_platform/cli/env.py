"""`elt env`: environments and their current state."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from elt_platform.access.facade import open_warehouse
from elt_platform.settings import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)


@app.command("list")
def list_environments() -> None:
    """Show every environment with its current release and number of assets."""
    wh = open_warehouse(load_settings())
    table = Table("environment", "kind", "current release", "assets", "owner", "created")
    for record in wh.environments.list():
        pointers = wh.environments.pointers(record.name)
        release = record.current_release or (
            f"(from {record.base_release})" if record.base_release else "-"
        )
        table.add_row(
            record.name,
            record.environment.kind.value,
            release,
            str(len(pointers)),
            record.owner or "-",
            record.created_at[:19],
        )
    console.print(table)


@app.command("create")
def create(name: str, owner: str = typer.Option(None, help="Owner e-mail or team:name.")) -> None:
    """Register an empty sandbox environment (it becomes a Dagster partition)."""
    from elt_platform.access.identity import default_owner

    wh = open_warehouse(load_settings())
    owner = owner or default_owner(wh.access.identity)  # the caller owns what they create
    wh.authorize("write", name, owner=owner)
    record = wh.environments.create_sandbox(name, owner=owner)
    console.print(f"created sandbox [bold]{record.name}[/]")


@app.command("show")
def show(name: str) -> None:
    """Show the versions an environment points at."""
    wh = open_warehouse(load_settings())
    wh.authorize("read", name)
    table = Table("asset", "version", "rows", "bytes")
    for asset, version in wh.resolve(name).items():
        table.add_row(asset, version.version_id, f"{version.rows:,}", f"{version.bytes:,}")
    console.print(table)
