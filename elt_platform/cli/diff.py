"""`elt diff`: how an environment or release differs from another, table by table, row by row."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import PROD
from elt_platform.settings import load_settings

console = Console(width=None if sys.stdout.isatty() else 160)


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)


def diff(
    name: str = typer.Argument(..., help="Sandbox, environment or release id to inspect."),
    against: str = typer.Option(PROD, "--against", help="Environment or release to compare with."),
    asset: list[str] = typer.Option(None, "--asset", help="Only these assets (repeatable)."),
    examples: int = typer.Option(3, help="Example rows per kind of change."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Schema changes, row counts, rows added/removed/changed by primary key, per-column changes."""
    from elt_platform.sandboxes.env_diff import diff_sides, primary_keys, record_diff, resolve_side

    settings = load_settings()
    wh = open_warehouse(settings)
    left, right = resolve_side(wh, against), resolve_side(wh, name)
    wh.access.check_row_comparison(
        [side.environment or "prod" for side in (left, right)],  # a release id reads prod data
        masks_pii=left.is_sandbox or right.is_sandbox,
    )
    result = diff_sides(
        wh,
        left,
        right,
        keys=primary_keys(settings),
        assets=asset or None,
        examples=examples,
        duckdb_config=settings.duckdb_config(),
    )
    if right.is_sandbox:
        instance = None
        if result.changed:  # observations in the UI; start-up cost: Dagster only then
            from elt_platform.orchestration.instance import open_instance

            instance = open_instance(settings)
        record_diff(wh, result, right.label, instance=instance)
    if as_json:
        print(json.dumps([t.to_dict() for t in result.tables], indent=2, default=str))
        return
    masked = " (PII masked on both sides)" if result.masked else ""
    table = Table(
        "asset",
        "key",
        f"rows {left.label}",
        f"rows {right.label}",
        "added",
        "removed",
        "changed",
        "schema",
        "columns changed",
        title=f"{right.label} vs {left.label}{masked}",
    )
    for t in result.tables:
        if t.mode == "identical":
            table.add_row(
                t.asset, "-", f"{t.rows_left:,}", f"{t.rows_right:,}", "", "", "", "", "identical"
            )
            continue
        schema = ", ".join(
            [f"+{c}" for c, _ in t.schema.added]
            + [f"-{c}" for c, _ in t.schema.removed]
            + [f"~{c} {a}->{b}" for c, a, b in t.schema.retyped]
        )
        columns = ", ".join(f"{c}: {n:,}" for c, n in t.column_changes.items() if n)
        table.add_row(
            t.asset,
            ",".join(t.key) if t.mode == "key" else f"({t.mode})",
            f"{t.rows_left:,}",
            f"{t.rows_right:,}",
            f"{t.added:,}",
            f"{t.removed:,}",
            "-" if t.changed is None else f"{t.changed:,}",
            schema or "-",
            columns or "-",
        )
    console.print(table)
    for t in result.changed:
        for note in t.notes:
            console.print(f"[yellow]{t.asset}:[/] {note}")
        for kind in ("added", "removed", "changed"):
            for row in (t.examples or {}).get(kind, []):
                console.print(f"  {t.asset} {kind}: {json.dumps(row, default=str)}", soft_wrap=True)
