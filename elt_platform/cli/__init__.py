"""The `elt` command line: thin commands over the platform modules, one module per noun."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from elt_platform.errors import EltError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Governed ELT platform on Dagster.",
)
err_console = Console(stderr=True)


PLUGIN_GROUP = "elt_platform.cli"  # packages beside the platform (e.g. the demo) add commands


def _register() -> None:
    from importlib.metadata import entry_points

    from elt_platform.cli import build, dbt, dev, env, init

    init.register(app)
    app.add_typer(env.app, name="env", help="List and manage environments.")
    app.add_typer(dbt.app, name="dbt", help="dbt project helpers.")
    build.register(app)
    dev.register(app)
    for plugin in entry_points(group=PLUGIN_GROUP):
        plugin.load()(app)
    from elt_platform.cli import diff, sandbox

    app.add_typer(sandbox.app, name="sandbox", help="Analyst sandboxes: create, build, drop, ...")
    diff.register(app)
    from elt_platform.cli import promote

    promote.register(app)
    from elt_platform.cli import contracts

    app.add_typer(contracts.app, name="contracts", help="Data contracts: check and diff.")
    from elt_platform.cli import quarantine

    app.add_typer(
        quarantine.app, name="quarantine", help="Rows diverted at ingestion: list/show/replay."
    )
    from elt_platform.cli import audit

    app.add_typer(audit.app, name="audit", help="Verify and read the audit ledger.")
    from elt_platform.cli import lineage

    lineage.register(app)
    from elt_platform.cli import governance

    app.add_typer(governance.app, name="governance", help="Access, privacy, retention, compliance.")
    from elt_platform.cli import catalog

    app.add_typer(catalog.app, name="catalog", help="Query the metadata catalog (read-only).")
    app.add_typer(catalog.docs_app, name="docs", help="Generate the documentation site.")


def main(argv: list[str] | None = None) -> None:
    import warnings

    # Dagster's own warning classes, from the small package that defines them: importing
    # `dagster` here would cost every command a second of start-up.
    from dagster_shared.utils.warnings import BetaWarning, PreviewWarning, SupersessionWarning

    for category in (BetaWarning, PreviewWarning, SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)
    _register()
    try:
        code = app(args=argv, prog_name="elt", standalone_mode=False)
        if isinstance(code, int) and code:  # click returns typer.Exit codes in this mode
            sys.exit(code)
    except EltError as exc:
        err_console.print(f"[bold red]error:[/] {exc.args[0]}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[dim]hint: {exc.hint}[/]", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        import click

        # Typer ships its own copy of click: its usage errors are not click's ClickException.
        if isinstance(exc, (click.ClickException, typer.TyperException)) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise
