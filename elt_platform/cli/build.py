"""`elt build`, `elt publish`, `elt releases`, `elt rollback`, `elt sql`."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from elt_platform.environments import PROD, STAGING, environment_from_name
from elt_platform.runtime import build_environment, open_warehouse
from elt_platform.settings import load_settings

console = Console(width=None if sys.stdout.isatty() else 160)


def actor() -> str:
    from elt_platform.governance.access import current_identity

    return current_identity().actor


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("publish")(publish)
    app.command("releases")(releases)
    app.command("rollback")(rollback)
    app.command("sql")(sql)


def build(
    environment: str = typer.Argument(..., help="staging or a sandbox name."),
    select: list[str] = typer.Option(None, "--select", "-s", help="Asset key, e.g. raw/orders."),
) -> None:
    """Materialize assets in one environment as a Dagster run."""
    settings = load_settings()
    wh = open_warehouse(settings)
    wh.authorize("write", environment)  # the run re-checks the identity carried by its tags
    tags = wh.access.identity.tags()
    outcome = build_environment(settings, environment, selection=select or None, tags=tags)
    table = Table("asset", "rows", "version", "checks ok", "checks failed")
    for a in outcome.assets.values():
        table.add_row(
            a.asset, f"{a.rows:,}" if a.rows is not None else "-", a.version_id or "-",
            str(a.checks_passed), str(a.checks_failed),
        )  # fmt: skip
    console.print(table)
    if not outcome.success:
        console.print(f"[red]run {outcome.run_id} failed:[/] {outcome.error}")
        raise typer.Exit(1)


def publish(
    source: str = typer.Option(STAGING, "--from", help="Environment whose versions to publish."),
) -> None:
    """Publish an environment's versions to prod as one atomic release."""
    env = environment_from_name(source)
    wh = open_warehouse(load_settings())
    result = wh.publish(env.name, triggered_by=actor())
    if result.changed:
        console.print(
            f"published [bold]{result.release.release_id}[/] to {PROD} "
            f"({len(result.changed_assets)} assets changed, previous: {result.previous_release})"
        )
    else:
        console.print(f"nothing changed: {PROD} already at {result.release.release_id}")


def releases() -> None:
    """List releases, newest first."""
    wh = open_warehouse(load_settings())
    current = wh.releases.current()
    table = Table("release", "created", "from", "code version", "triggered by", "assets", "")
    for r in wh.releases.list():
        mark = "<- prod" if current and r.release_id == current.release_id else ""
        table.add_row(
            r.release_id, r.created_at[:19], r.source_environment, r.code_version or "-",
            r.triggered_by, str(len(r.manifest)), mark,
        )  # fmt: skip
    console.print(table)


def rollback(to: str = typer.Option(..., "--to", help="Release id to point prod at.")) -> None:
    """Point prod back at an earlier release (a pointer change; no data is copied)."""
    wh = open_warehouse(load_settings())
    result = wh.rollback(to, actor=actor())
    console.print(
        f"prod now at [bold]{result.release.release_id}[/] (was {result.previous_release}; "
        f"{len(result.changed_assets)} assets changed)"
    )


def sql(
    environment: str = typer.Argument(..., help="Environment whose catalog to query."),
    query: str = typer.Argument(..., help="A read-only SQL query."),
) -> None:
    """Run a read-only query against an environment's catalog."""
    env = environment_from_name(environment)
    wh = open_warehouse(load_settings())
    wh.environments.get(env.name)
    con = wh.connect(env.name)  # read check; restricted roles read masked views
    try:
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description]
        table = Table(*columns)
        for row in cursor.fetchmany(50):
            table.add_row(*[str(v) for v in row])
    finally:
        con.close()
    console.print(table)
