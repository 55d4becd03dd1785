"""`elt quarantine list|show|replay`: rows diverted at ingestion, per dataset and environment."""

from __future__ import annotations

import sys

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import STAGING, environment_from_name
from elt_platform.errors import UnknownAsset
from elt_platform.project.contracts.from_dbt import contracts_for, load_sources
from elt_platform.settings import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)
ENV_OPTION = typer.Option(STAGING, "--env", help="Environment whose quarantine to use.")


def _source(dataset: str):
    settings = load_settings()
    name = dataset.removeprefix("raw/")
    source = next((s for s in load_sources(settings) if s.name == name), None)
    contract = contracts_for(settings).get(f"raw/{name}")
    if source is None or contract is None:
        raise UnknownAsset(f"no source with a contract named {dataset!r}")
    return settings, source, contract


def _query(sql: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@app.command("list")
def list_quarantine(environment: str = ENV_OPTION) -> None:
    """Quarantined rows per dataset and reason."""
    env = environment_from_name(environment).name
    settings = load_settings()
    wh = open_warehouse(settings)
    wh.authorize("read", env)
    from elt_platform.connectors.replay import quarantined  # start-up cost (sqlglot, pyarrow)

    table = Table("dataset", "reason", "rows")
    for source in load_sources(settings):
        scan = quarantined(wh, source.name, env)
        if scan is not None:
            for reason, rows in _query(
                f"SELECT reason, count(*) FROM {scan} GROUP BY 1 ORDER BY 1"
            ):
                table.add_row(f"raw/{source.name}", reason, str(rows))
    console.print(table)


@app.command("show")
def show(dataset: str, environment: str = ENV_OPTION, limit: int = 20) -> None:
    """Quarantined rows of one dataset: reason, source position, original values."""
    settings, source, _ = _source(dataset)
    wh = open_warehouse(settings)
    wh.authorize("read", environment)
    from elt_platform.connectors.replay import quarantined  # start-up cost (sqlglot, pyarrow)

    scan = quarantined(wh, source.name, environment_from_name(environment).name)
    table = Table("reason", "position", "row")
    for row in _query(f"SELECT * FROM {scan} ORDER BY ALL LIMIT {int(limit)}") if scan else []:
        table.add_row(*[str(v) for v in row])
    console.print(table)


@app.command("replay")
def replay(dataset: str, environment: str = ENV_OPTION) -> None:
    """Re-validate quarantined rows against the current contract; load those that now conform."""
    settings, source, contract = _source(dataset)
    env = environment_from_name(environment).name
    wh = open_warehouse(settings)
    wh.authorize("write", env)
    from elt_platform.connectors.replay import replay_quarantine  # start-up cost

    result = replay_quarantine(
        wh,
        source,
        contract,
        env,
        actor=wh.access.identity.actor,
        duckdb_config=settings.duckdb_config(),
    )
    console.print(
        f"replayed {result.replayed} rows of raw/{source.name}: loaded {result.loaded}, "
        f"{result.still_quarantined} still quarantined"
        + (
            f" ({', '.join(f'{r}: {n}' for r, n in result.reasons.items())})"
            if result.reasons
            else ""
        )
    )
