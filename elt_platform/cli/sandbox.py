"""`elt sandbox`: create, list, plan, build, show, drop, prune and reproduce analyst sandboxes."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from elt_platform.access.facade import open_warehouse
from elt_platform.cli.common import caller
from elt_platform.durations import format_duration
from elt_platform.project.environment_config import parse_assignments
from elt_platform.settings import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)


def _authorized(action: str, name: str, owner: str | None = None):
    """The warehouse, after checking the caller may `action` (read/write) sandbox `name`."""
    wh = open_warehouse(load_settings())
    wh.authorize(action, name, owner=owner)
    return wh


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Sandbox name (lowercase identifier)."),
    from_release: str = typer.Option(None, "--from", help="Release id (default: prod's current)."),
    ttl: str = typer.Option("7d", help="Time to live: 90m, 12h, 7d, 2w or `none`."),
    owner: str = typer.Option(None, help="Owner e-mail or team:name."),
    flag: list[str] = typer.Option(None, "--flag", help="Feature flag name=value (repeatable)."),
    var: list[str] = typer.Option(None, "--var", help="dbt var name=value (repeatable)."),
) -> None:
    """Create a sandbox from a release: pointers only, no data copied; PII is masked."""
    from elt_platform.access.identity import default_owner
    from elt_platform.sandboxes.create import create_sandbox

    settings = load_settings()
    wh = open_warehouse(settings)
    owner = owner or default_owner(wh.identity)  # the caller owns what they create
    flags, values = parse_assignments(flag, "flag"), parse_assignments(var, "var")
    created = create_sandbox(
        wh,
        name,
        from_release=from_release,
        ttl=ttl,
        owner=owner,
        flags=flags,
        vars=values,
        actor=wh.identity.actor,
    )  # no Dagster instance: the partition sensor or the first build registers the partition
    console.print(
        f"created sandbox [bold]{created.name}[/] from {created.release_id} "
        f"({created.assets} assets, no data copied, {created.seconds * 1000:.0f} ms; "
        f"ttl {format_duration(created.ttl_seconds)})"
    )
    console.print(f"catalog: {created.catalog}")


@app.command("list")
def list_sandboxes() -> None:
    """Sandboxes with owner, age, TTL and the size of the data they own (their new versions)."""
    from elt_platform.sandboxes.prune import sandbox_status

    wh = open_warehouse(load_settings())
    table = Table("sandbox", "owner", "from release", "age", "ttl", "expires in", "owns", "bytes")
    for s in sandbox_status(wh, datetime.now(UTC)):
        r = s.record
        table.add_row(
            r.name,
            r.owner or "-",
            r.base_release or "-",
            format_duration(s.age_seconds),
            format_duration(r.ttl_seconds),
            format_duration(s.expires_in_seconds),
            f"{s.owned_versions} versions",
            f"{s.owned_bytes:,}",
        )
    console.print(table)


@app.command("plan")
def plan(
    name: str,
    select: list[str] = typer.Option(None, "--select", "-s", help="Asset key, e.g. orders."),
) -> None:
    """Show which assets a build would recompute, and why; the rest resolve to the release."""
    from elt_platform.launch.plans import plan_sandbox

    _authorized("read", name)
    result = plan_sandbox(load_settings(), name, select or None)
    print_plan(result)


@app.command("build")
def build(
    name: str,
    select: list[str] = typer.Option(None, "--select", "-s", help="Asset key, e.g. orders."),
) -> None:
    """Recompute only the assets whose code, inputs or vars differ from the source release."""
    from elt_platform.launch.sandboxes import build_sandbox

    _authorized("write", name)
    settings = load_settings()
    result = build_sandbox(settings, name, select or None)
    print_plan(result.plan)
    if result.outcome is None:
        console.print("nothing to rebuild: every selected asset resolves to an existing version")
        return
    outcome = result.outcome
    table = Table("asset", "rows", "version", "rebuilt", "checks ok", "checks failed")
    for a in sorted(outcome.assets.values(), key=lambda a: a.asset):
        table.add_row(
            a.asset,
            f"{a.rows:,}" if a.rows is not None else "-",
            a.version_id or "-",
            "yes" if a.asset in result.plan.rebuild else "no",
            str(a.checks_passed),
            str(a.checks_failed),
        )
    console.print(table)
    if not outcome.success:
        console.print(f"[red]run {outcome.run_id} failed:[/] {outcome.error}")
        raise typer.Exit(1)
    console.print(f"run {outcome.run_id} in {name}; see `elt diff {name}` for the changes")


@app.command("show")
def show(name: str) -> None:
    """Print the sandbox's experiment record (JSON)."""
    from elt_platform.sandboxes.experiment import ExperimentStore

    wh = _authorized("read", name)
    record = ExperimentStore(wh.root, wh.meta).get(name)
    console.print_json(json.dumps(record, default=str))


@app.command("drop")
def drop(name: str) -> None:
    """Archive the experiment record, then remove the sandbox and the versions only it owns."""
    from elt_platform.orchestration.instance import open_instance  # start-up cost: Dagster
    from elt_platform.sandboxes.prune import drop_sandbox

    settings = load_settings()
    wh = _authorized("write", name)  # analysts drop only their own sandboxes
    result = drop_sandbox(wh, name, actor=caller().actor, instance=open_instance(settings))
    console.print(
        f"dropped [bold]{result.name}[/]: {len(result.deleted_versions)} owned versions deleted "
        f"({result.freed_bytes:,} bytes); record archived to {result.archived_record}"
    )


@app.command("prune")
def prune() -> None:
    """Drop every sandbox past its TTL now (the `prune_sandboxes` schedule does this hourly)."""
    from elt_platform.orchestration.instance import open_instance  # start-up cost: Dagster
    from elt_platform.sandboxes.prune import prune_expired, sandbox_status

    settings = load_settings()
    wh = open_warehouse(settings)
    for status in sandbox_status(wh):
        if status.expired:  # pruning drops them: the caller must be allowed to write each
            wh.authorize("write", status.record.name)
    results = prune_expired(wh, actor=caller().actor, instance=open_instance(settings))
    for r in results:
        console.print(f"pruned {r.name} (record: {r.archived_record})")
    if not results:
        console.print("no sandbox is past its TTL")


@app.command("reproduce")
def reproduce(
    name: str,
    into: str = typer.Option(None, "--as", help="Name of the fresh sandbox (default NAME_rN)."),
) -> None:
    """Re-create a sandbox's outputs from its record in a fresh sandbox; compare content hashes."""
    from elt_platform.launch.reproduce import reproduce as run_reproduce

    _authorized("read", name)
    result = run_reproduce(load_settings(), name, into=into, actor=caller().actor)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    table = Table("asset", "recorded", "reproduced", "")
    for asset, version in result.matched.items():
        table.add_row(asset, version, version, "identical")
    for asset, (expected, got) in result.mismatched.items():
        table.add_row(asset, expected or "-", got or "-", "[red]differs[/]")
    console.print(table)
    if result.error:
        console.print(f"[red]reproduction build failed:[/] {result.error}")
        raise typer.Exit(1)
    if not result.identical:
        console.print(f"[red]{result.sandbox} does not reproduce {name}[/]")
        raise typer.Exit(1)
    console.print(
        f"{result.sandbox} reproduces {name}: {len(result.matched)} outputs with identical "
        f"content hashes (from {result.source_release})"
    )


def print_plan(result) -> None:
    table = Table("asset", "action", "reason", "resolves to")
    for asset, d in result.decisions.items():
        action = "[bold]recompute[/]" if d.rebuild else "reuse"
        table.add_row(asset, action, d.reason, d.version_id or "-")
    console.print(table)
