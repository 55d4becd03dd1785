"""`elt promote`, `elt releases`, `elt rollback`, `elt gc`: the release lifecycle of prod."""

from __future__ import annotations

import sys
from datetime import timedelta

import typer
from rich.console import Console
from rich.table import Table

from elt_platform.access.facade import open_warehouse
from elt_platform.cli.common import caller
from elt_platform.orchestration.names import NOTHING_TO_PROMOTE
from elt_platform.project.project_file import load_promotion_policy
from elt_platform.settings import load_settings

console = Console(width=None if sys.stdout.isatty() else 160)


def _authorized(action: str, environment: str = "prod"):
    """The warehouse, after checking the caller may `action` (read/write) prod."""
    wh = open_warehouse(load_settings())
    wh.authorize(action, environment)
    return wh


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
    app.command("releases")(releases)
    app.command("rollback")(rollback)
    app.command("gc")(gc)


def promote(
    explain: bool = typer.Option(
        False,
        "--explain",
        help="List every blocking problem and governance warning; promote nothing.",
    ),
) -> None:
    """Evaluate the promotion gates for staging and, if they pass, publish it to prod."""
    if explain:
        _authorized("read", "staging")
        _explain()
        return
    _authorized("write")
    # Dagster + dbt (~4 s to import): only in commands that launch a run, not at `elt --help`.
    from elt_platform.launch.runs import promote_via_sensor

    outcome = promote_via_sensor(load_settings(), actor=caller().actor)
    if not outcome.requested:
        blocked = not outcome.reason.startswith(NOTHING_TO_PROMOTE)
        style = "red" if blocked else "green"
        console.print(f"[{style}]{outcome.reason}[/]")
        raise typer.Exit(1 if blocked else 0)
    if not outcome.success:
        console.print(f"[red]promotion run {outcome.run_id} failed:[/] {outcome.reason}")
        raise typer.Exit(1)
    console.print(
        f"promoted: prod at [bold]{outcome.release_id}[/] "
        f"({len(outcome.changed_assets)} assets changed; run {outcome.run_id})"
    )
    if outcome.warnings:
        console.print(
            f"[yellow]{len(outcome.warnings)} governance warnings[/] (not blocking under the "
            "promotion policy; `elt promote --explain` lists them)"
        )


def _explain() -> None:
    """Every problem that blocks staging and every warning, one per line."""
    from elt_platform.launch.runs import explain_candidate  # Dagster + dbt: start-up cost

    cand = explain_candidate(load_settings())
    for problem in cand.problems:
        console.print(f"[red]block[/] {problem}", highlight=False)
    for warning in cand.warnings:
        console.print(f"[yellow]warn[/]  {warning}", highlight=False)
    verdict = "eligible" if cand.eligible else "blocked"
    console.print(
        f"{cand.source_environment}: {verdict}; {len(cand.problems)} blocking problems, "
        f"{len(cand.warnings)} warnings"
    )


def releases(limit: int = typer.Option(20, help="Show at most this many releases.")) -> None:
    """List releases, newest first, with who triggered them and their gate summary."""
    wh = _authorized("read")
    current = wh.releases.current()
    table = Table(
        "release", "created", "from", "code version", "triggered by", "assets", "gates", ""
    )
    for r in wh.releases.list()[:limit]:
        gates = r.gate_summary or {}
        summary = (
            f"{gates.get('checks_passed', '?')} passed / {gates.get('checks_failed', '?')} failed"
            if "checks_passed" in gates
            else "-"
        )
        mark = "<- prod" if current and r.release_id == current.release_id else ""
        if r.collected_at:
            mark = "collected"
        table.add_row(
            r.release_id,
            r.created_at[:19],
            r.source_environment,
            r.code_version or "-",
            r.triggered_by,
            str(len(r.manifest)),
            summary,
            mark,
        )
    console.print(table)


def rollback(
    to: str = typer.Option(..., "--to", help="Release id to point prod at."),
    asset: list[str] = typer.Option(None, "--asset", help="Roll back only these (+ downstream)."),
) -> None:
    """Point prod back at an earlier release (pointer change; a subset takes its downstream)."""
    settings = load_settings()
    _authorized("write")
    from elt_platform.launch.runs import rollback_via_job  # Dagster + dbt: start-up cost

    result = rollback_via_job(settings, to, assets=asset or None, actor=caller().actor)
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        message = failure.event_specific_data.error.message.strip() if failure else "failed"
        console.print(f"[red]rollback failed:[/] {message.splitlines()[0]}")
        raise typer.Exit(1)
    current = open_warehouse(settings).releases.current()
    console.print(f"prod now at [bold]{current.release_id}[/] (rollback run {result.run_id})")


def gc(dry_run: bool = typer.Option(False, help="Report what would be collected.")) -> None:
    """Collect old releases and versions nothing references (never a referenced one)."""
    from elt_platform.promotion.gc import collect_garbage  # start-up cost (imports Dagster)

    policy = load_promotion_policy(load_settings())
    report = collect_garbage(
        _authorized("write"),  # collecting releases changes what prod can roll back to
        keep=policy.keep_releases,
        grace=timedelta(hours=policy.gc_grace_hours),
        actor=caller().actor,
        dry_run=dry_run,
    )
    verb = "would collect" if dry_run else "collected"
    console.print(
        f"{verb} {len(report.collected_releases)} releases and {len(report.deleted_versions)} "
        f"versions ({report.freed_bytes:,} bytes); kept {len(report.kept_releases)} releases; "
        f"{'would remove' if dry_run else 'removed'} {len(report.pending_removed)} stale pending "
        f"files and {len(report.orphans_removed)} unrecorded version folders of interrupted "
        "writers"
    )
