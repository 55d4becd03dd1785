"""`elt catalog query|refresh|export` and `elt docs build`."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from elt_platform.settings import load_settings

app = typer.Typer(no_args_is_help=True)
docs_app = typer.Typer(no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 200)


@app.command("query")
def query(
    sql: str = typer.Argument(..., help="One read-only SELECT over the catalog views."),
    limit: int = typer.Option(200, help="Print at most this many rows."),
) -> None:
    """Run a read-only query (views: assets, owners, asset_columns, column_derivations, ...)."""
    from elt_platform.access.facade import open_warehouse
    from elt_platform.audit.metadata_catalog import (
        LEDGER_RELATIONS,
        catalog_relations,
        query_catalog,
    )

    settings = load_settings()
    wh = open_warehouse(settings)
    checked = wh.guard_query(sql, catalog_relations(), dialect="sqlite")  # refusals ledgered
    if checked.relations & LEDGER_RELATIONS:
        wh.authorize("read_ledger")  # the audit log is for roles that may read the ledger
    result = query_catalog(settings.metadata_path, checked, limit=limit)
    table = Table(*result.columns)
    for row in result.rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


@app.command("refresh")
def refresh() -> None:
    """Rebuild the catalog's derived rows from contracts, dbt, lineage and Dagster history."""
    from elt_platform.audit.history import refresh as refresh_catalog

    settings = load_settings()
    refresh_catalog(settings)
    console.print(f"catalog refreshed in {settings.metadata_path}", highlight=False)


@app.command("export")
def export() -> None:
    """Copy the catalog views into a DuckDB file, for DuckDB and BI tools."""
    from elt_platform.audit.history import refresh as refresh_catalog
    from elt_platform.audit.metadata_catalog import export_to_duckdb

    settings = load_settings()
    _authorize_ledger(settings)  # the export includes the audit log
    refresh_catalog(settings)
    target = settings.warehouse_dir / "catalogs" / "_catalog.duckdb"
    target.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"catalog exported to {export_to_duckdb(settings.metadata_path, target)}")


def _authorize_ledger(settings) -> None:
    from elt_platform.access.facade import open_warehouse

    open_warehouse(settings).authorize("read_ledger")


@docs_app.command("build")
def build() -> None:
    """Write the static documentation site (one page per asset and an index)."""
    from elt_platform.audit.docs import build_docs

    index = build_docs(load_settings())
    console.print(f"docs site written to {index}", highlight=False)
    console.print(f"dashboard: {index.with_name('dashboard.html')}", highlight=False)
    console.print(f"lineage graph: {index.with_name('lineage.html')}", highlight=False)
