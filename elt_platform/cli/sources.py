"""`elt sources`: write the deterministic synthetic source dataset."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from elt_platform.settings import load_settings
from elt_platform.sources_data import ensure_synthetic_sources

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command("generate")
def generate(
    rows: int = typer.Option(10_000, help="Number of orders (customers = rows / 10)."),
    seed: int = typer.Option(42, help="Random seed; the same seed gives identical files."),
    out: Path = typer.Option(None, help="Landing folder (default: ELT_SOURCES_DIR)."),
) -> None:
    """Generate customers, products, orders (with late updates) and payments."""
    target = out or load_settings().sources_dir
    written, counts = ensure_synthetic_sources(target, rows=rows, seed=seed)
    state = "wrote" if written else "unchanged"
    summary = ", ".join(f"{k}={v:,}" for k, v in counts.items())
    console.print(f"{state} {target}: {summary}")
