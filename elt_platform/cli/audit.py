"""`elt audit verify|log|head`: check and read the tamper-evident audit ledger."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table

from elt_platform.access.facade import open_warehouse
from elt_platform.errors import InvalidSince
from elt_platform.settings import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 200)
_RELATIVE = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _ledger_reader():
    """The warehouse, after checking the caller's role may read the ledger (auditors may)."""
    wh = open_warehouse(load_settings())
    wh.authorize("read_ledger")
    return wh


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO date/time or a relative age (`7d`, `12h`) as an aware UTC datetime."""
    match = _RELATIVE.fullmatch(text.strip())
    if match:
        delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
        return (now or datetime.now(UTC)) - delta
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidSince(f"cannot read --since {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("verify")
def verify(
    head: str = typer.Option(None, "--head", help="A head hash kept from `elt audit head`."),
    data: bool = typer.Option(
        False, "--data", help="Also re-hash every version a live environment or release uses."
    ),
    sample: float = typer.Option(
        None, "--sample", min=0.0, max=1.0, help="With --data: re-hash this fraction of them."
    ),
) -> None:
    """Check the ledger (chain, signatures, anchors, state) and optionally the data; exit 1
    naming every problem found."""
    wh = _ledger_reader()
    report = wh.ledger.verify(expected_head=head)
    for problem in report.problems:
        console.print(f"[bold red]ledger tampered:[/] {problem.message}", highlight=False)
    failed = not report.ok
    if report.ok:
        signed = ", signatures checked" if report.signed else ""
        console.print(
            f"ledger intact: {report.entries} entries, head {report.head} "
            f"({report.anchors} anchors, state matches{signed})",
            highlight=False,
        )
    if data or sample is not None:
        checked = wh.verify_data(sample=sample)
        for mismatch in checked.mismatches:
            console.print(f"[bold red]data tampered:[/] {mismatch}", highlight=False)
        verdict = "data intact" if checked.ok else f"{len(checked.mismatches)} versions damaged"
        console.print(
            f"{verdict}: {checked.checked} of {checked.live_versions} live versions re-hashed, "
            f"{checked.rows:,} rows, {checked.bytes / 1e6:,.1f} MB in {checked.seconds:.2f} s "
            f"({checked.rows_per_second:,.0f} rows/s)",
            highlight=False,
        )
        failed = failed or not checked.ok
    if failed:
        raise typer.Exit(1)


@app.command("head")
def head() -> None:
    """Print the last entry's number and hash (keep it elsewhere to detect truncation)."""
    seq, digest = _ledger_reader().ledger.head()
    console.print(f"{seq} {digest}", highlight=False)


@app.command("log")
def log(
    asset: str = typer.Option(None, "--asset", help="Only entries touching this asset."),
    since: str = typer.Option(None, "--since", help="ISO date/time or an age: 30m, 12h, 7d."),
    kind: str = typer.Option(None, "--kind", help="Only this kind, e.g. release.published."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Print the ledger history, oldest first."""
    entries = _ledger_reader().ledger.entries(
        asset=asset, since=parse_since(since) if since else None, kind=kind
    )
    if as_json:
        for e in entries:
            print(json.dumps(e.__dict__, sort_keys=True))
        return
    table = Table("#", "at", "kind", "actor", "env", "run", "code", "assets", "params")
    for e in entries:
        assets = ", ".join(f"{a}@{v[:8]}" for a, v in sorted(e.assets.items()))
        params = json.dumps(e.params, sort_keys=True)
        table.add_row(
            str(e.seq),
            e.at[:19],
            e.kind,
            e.actor,
            e.environment or "-",
            (e.run_id or "-")[:8],
            e.code_version or "-",
            assets or "-",
            params if len(params) <= 80 else params[:77] + "...",
        )
    console.print(table)
