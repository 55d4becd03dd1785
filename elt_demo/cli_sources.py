"""`elt sources`: write the deterministic synthetic sources; serve the demo payments API."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from elt_platform.errors import ConfigError
from elt_platform.settings import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command("generate")
def generate(
    rows: int = typer.Option(10_000, help="Number of orders (customers = rows / 10)."),
    seed: int = typer.Option(42, help="Random seed; the same seed gives identical files."),
    out: Path = typer.Option(None, help="Landing folder (default: ELT_SOURCES_DIR)."),
) -> None:
    """Generate customers (files + SQLite), products, orders (with late updates) and payments."""
    from elt_demo.sources import DATABASE, ensure_synthetic_sources  # start-up cost: pyarrow

    target = out or load_settings().sources_dir
    written, counts = ensure_synthetic_sources(target, rows=rows, seed=seed)
    state = "wrote" if written else "unchanged"
    summary = ", ".join(f"{k}={v:,}" for k, v in counts.items())
    console.print(f"{state} {target}: {summary}; SQL source {target / DATABASE}")


@app.command("serve-api")
def serve_api(
    port: int = typer.Option(8765, help="Port on 127.0.0.1 (0 picks a free one)."),
    error_rate: float = typer.Option(0.0, help="Fraction of requests answered 500 or 429."),
    drop_rate: float = typer.Option(0.0, help="Fraction of responses cut off mid-page."),
) -> None:
    """Serve the landing folder's tables as the demo JSON API until Ctrl-C (for `elt dev`)."""
    from elt_demo.api import TOKEN_ENV, URL_ENV, DemoApi, FaultPlan

    token = os.environ.get(TOKEN_ENV)
    if not token:  # the token is never printed: the same variable must reach the connector
        raise ConfigError(
            f"{TOKEN_ENV} is not set",
            hint=f"export {TOKEN_ENV}=<any secret> in this shell and in the one running `elt dev`",
        )
    faults = FaultPlan(error_rate=error_rate, drop_rate=drop_rate)
    api = DemoApi(load_settings().sources_dir, port=port, token=token, faults=faults)
    console.print(f"serving {api.data_dir} at {api.url} (set {URL_ENV} if not on port 8765)")
    try:
        api.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
