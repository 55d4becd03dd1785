"""`elt demo`: the main job end to end on embedded defaults and synthetic data."""

from __future__ import annotations

import sys
import time

import typer
from rich.console import Console
from rich.table import Table

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import PROD, STAGING
from elt_platform.orchestration.names import NOTHING_TO_PROMOTE
from elt_platform.settings import load_settings

console = Console(width=None if sys.stdout.isatty() else 160)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    rows: int = typer.Option(10_000, help="Synthetic orders to generate."),
    seed: int = typer.Option(42, help="Seed of the synthetic data."),
) -> None:
    """Generate sources, build staging, run the checks, publish to prod, print a summary."""
    # Start-up cost: data generation and Dagster load for this command only, not for `elt`.
    from elt_demo.api import serving_demo_api
    from elt_demo.sources import ensure_synthetic_sources
    from elt_platform.launch.runs import build_environment, promote_via_sensor

    settings = load_settings()
    started = time.perf_counter()
    written, counts = ensure_synthetic_sources(settings.sources_dir, rows=rows, seed=seed)
    console.print(
        f"sources {'generated' if written else 'unchanged'} in {settings.sources_dir} "
        f"({', '.join(f'{k}={v:,}' for k, v in counts.items())})"
    )
    # The payments source is the local demo API: it runs on a free port for the build only.
    with serving_demo_api(settings.sources_dir):
        outcome = build_environment(settings, STAGING, tags={"elt/trigger": "demo"})
    wh = open_warehouse(settings)
    if not outcome.success or outcome.checks_failed:
        _print_summary(outcome, None)
        failed = [f"{a.asset}:{c}" for a in outcome.assets.values() for c in a.failed_checks]
        console.print(f"[red]staging build did not pass:[/] {outcome.error or ', '.join(failed)}")
        raise typer.Exit(1)
    # Promotion goes through the sensor, exactly as in production: it re-reads the gate results
    # recorded for these versions and requests a promotion run.
    promotion = promote_via_sensor(settings)
    _print_summary(outcome, promotion)
    if promotion.requested and not promotion.success:
        console.print(f"[red]promotion run {promotion.run_id} failed:[/] {promotion.reason}")
        raise typer.Exit(1)
    if promotion.requested:
        console.print(
            f"promotion sensor requested run {promotion.run_id[:8]}: published release "
            f"[bold]{promotion.release_id}[/] to {PROD} "
            f"({len(promotion.changed_assets)} assets changed)"
        )
    elif promotion.reason.startswith(NOTHING_TO_PROMOTE):
        console.print(promotion.reason)
    else:
        console.print(f"[red]promotion sensor skipped:[/] {promotion.reason}")
        raise typer.Exit(1)
    console.print(
        f"prod catalog: {wh.catalogs.path(PROD)}  ({time.perf_counter() - started:.1f} s)"
    )
    from elt_platform.audit.docs import build_docs

    index = build_docs(settings)
    console.print(f"docs site: {index}", highlight=False)
    console.print(f"dashboard: {index.with_name('dashboard.html')}", highlight=False)


def _print_summary(outcome, result) -> None:
    table = Table(title=f"run {outcome.run_id[:8]} in {outcome.environment}")
    for col in ("asset", "environment", "rows", "version", "checks passed", "checks failed", "s"):
        table.add_column(col, justify="right" if col in {"rows", "s"} else "left")
    for a in sorted(outcome.assets.values(), key=lambda a: a.asset):
        table.add_row(
            a.asset,
            outcome.environment,
            f"{a.rows:,}" if a.rows is not None else "-",
            a.version_id or "-",
            str(a.checks_passed),
            str(a.checks_failed),
            f"{a.seconds:.2f}" if a.seconds is not None else "-",
        )
    console.print(table)
