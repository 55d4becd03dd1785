"""`elt build` and `elt sql`: materialize an environment, query its catalog (sandboxed)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import environment_from_name, require_buildable
from elt_platform.settings import load_settings

console = Console(width=None if sys.stdout.isatty() else 160)


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("sql")(sql)


def build(
    environment: str = typer.Argument(..., help="staging or a sandbox name."),
    select: list[str] = typer.Option(None, "--select", "-s", help="Asset key, e.g. raw/orders."),
    plan: bool = typer.Option(
        False, "--plan", help="Show what the build would recompute and why; build nothing."
    ),
) -> None:
    """Materialize assets in one environment as a Dagster run (unchanged models keep their
    build: only what changed and its downstream is recomputed; in staging only changed sources
    are extracted, and with nothing changed no run is launched)."""
    settings = load_settings()
    require_buildable(environment_from_name(environment))  # prod: refused before anything runs
    wh = open_warehouse(settings)
    if plan:
        from elt_platform.cli.sandbox import print_plan
        from elt_platform.launch.plans import plan_build

        wh.authorize("read", environment)
        print_plan(plan_build(settings, environment, select or None))
        return
    wh.authorize("write", environment)  # the run re-checks the identity carried by its tags
    tags = wh.access.identity.tags()
    if environment_from_name(environment).name == "staging":
        from elt_platform.launch.staging import build_staging

        staged = build_staging(settings, select or None, tags=tags)
        for asset, why in staged.probes.items():
            console.print(f"{asset}: {why or 'unchanged, not extracted'}")
        outcome = staged.outcome
    else:
        # Start-up cost: Dagster and the Definitions (seconds) load only when a run is launched.
        from elt_platform.launch.runs import build_environment

        outcome = build_environment(settings, environment, selection=select or None, tags=tags)
    table = Table("asset", "rows", "version", "recomputed", "checks ok", "checks failed")
    for a in outcome.assets.values():
        table.add_row(
            a.asset,
            f"{a.rows:,}" if a.rows is not None else "-",
            a.version_id or "-",
            {True: "yes", False: "no (reused)"}.get(a.recomputed, "-"),
            str(a.checks_passed),
            str(a.checks_failed),
        )
    console.print(table)
    if outcome.run_id is None:
        console.print("no source or model changed: nothing recomputed, no run launched")
    if not outcome.success:
        console.print(f"[red]run {outcome.run_id} failed:[/] {outcome.error}")
        raise typer.Exit(1)


def sql(
    environment: str = typer.Argument(..., help="Environment whose catalog to query."),
    query: str = typer.Argument(..., help="One read-only SELECT over the environment's views."),
    limit: int = typer.Option(50, help="Print at most this many rows."),
) -> None:
    """Run one read-only SELECT on an environment's views (sandboxed: no files, no other
    statements; restricted roles read masked views)."""
    result = open_warehouse(load_settings()).query(environment, query, limit=limit)
    table = Table(*result.columns)
    for row in result.rows:
        table.add_row(*[str(v) for v in row])
    console.print(table)
