"""`elt init` and `elt new source`: the pipeline factory for a team's own dbt project."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import typer
from rich.console import Console

from elt_platform.errors import ConfigError, MissingDbtProject
from elt_platform.settings import Settings, load_settings

console = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=True)
new_app = typer.Typer(no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(new_app, name="new", help="Scaffold pipeline pieces from templates.")


def _project_settings(project: Path | None) -> Settings:
    """Settings for the project named, else the current folder when it is a dbt project, else
    the configured one (ELT_PROJECT_DIR)."""
    settings = load_settings()
    chosen = project or (Path.cwd() if (Path.cwd() / "dbt_project.yml").is_file() else None)
    if chosen is not None:
        settings = dataclasses.replace(settings, dbt_project_dir=chosen.resolve())
    if not (settings.dbt_project_dir / "dbt_project.yml").is_file():
        raise MissingDbtProject(f"no dbt project at {settings.dbt_project_dir}")
    return settings


def init(
    project: Path = typer.Option(None, "--project", help="dbt project folder (default: here)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing project file."),
) -> None:
    """Write the optional elt_project.yml with commented defaults and a TODO for every governance
    fact the dbt YAML lacks; list what is missing."""
    from elt_platform.project.contracts.from_dbt import contracts_for
    from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
    from elt_platform.project.lineage import load_lineage
    from elt_platform.project.scaffold import governance_gaps, project_file_text, write_project_file

    settings = _project_settings(project)
    cfg = load_dbt_project(settings)
    prepare_manifest(cfg)
    gaps = governance_gaps(load_lineage(settings, stored_schemas=False), contracts_for(settings))
    target = settings.project_file
    write_project_file(target, project_file_text(cfg.project_name, gaps), force=force)
    console.print(f"wrote {target}", highlight=False)
    unclassified = sum(len(c) for c in gaps.unclassified.values())
    console.print(
        f"governance missing: {len(gaps.no_owner)} assets without owner, "
        f"{len(gaps.no_description)} without description, {len(gaps.no_retention)} without "
        f"retention, {unclassified} unclassified columns (masked in sandboxes until classified)"
    )
    for asset, columns in sorted(gaps.personal.items()):
        console.print(f"  looks like personal data: {asset}: {', '.join(columns)}", highlight=False)
    console.print(
        "next: fill the TODOs (or add `meta` to the dbt YAML), then `elt build staging` and "
        "`elt promote`; `elt new source --connector files|sql|http NAME` adds an extracted table"
    )


@new_app.command("source")
def new_source(
    name: str = typer.Argument(..., help="Table name (lowercase identifier)."),
    connector: str = typer.Option(..., "--connector", help="files, sql or http."),
    path: str = typer.Option(None, help="files: glob under the landing folder."),
    format: str = typer.Option("parquet", help="files: parquet, csv or jsonl."),
    url: str = typer.Option(None, help="sql: SQLAlchemy URL ({sources_dir} allowed)."),
    table: str = typer.Option(None, help="sql: table name (default NAME)."),
    base_url: str = typer.Option(None, "--base-url", help="http: API root."),
    endpoint: str = typer.Option(None, help="http: path of the paginated resource."),
    primary_key: list[str] = typer.Option(None, "--primary-key", help="Key column (repeatable)."),
    project: Path = typer.Option(None, "--project", help="dbt project folder (default: here)."),
) -> None:
    """Add a raw table: its connector entry, dbt sources YAML, a staging model and its tests."""
    from elt_platform.connectors.discover import discover_columns
    from elt_platform.project.scaffold import CONNECTORS, NewSource, add_connector, dbt_files
    from elt_platform.project.sources import SourceDefaults, SourceEntry, source_config

    if connector not in CONNECTORS:
        raise ConfigError(f"unknown connector {connector!r}", hint=f"use one of {CONNECTORS}")
    if not name.isidentifier() or not name.islower():
        raise ConfigError(f"invalid source name {name!r}", hint="use a lowercase identifier")
    settings = _project_settings(project)
    options: dict[str, object] = {
        "files": {"path": path or f"{name}/*.{format}", "format": format},
        "sql": {"url": url or "sqlite:///{sources_dir}/db.sqlite", "table": table or name},
        "http": {
            "base_url": base_url or "http://127.0.0.1:8765",
            "endpoint": endpoint or f"/{name}",
        },
    }[connector]
    entry = SourceEntry.model_validate({"connector": connector, **options})
    columns = discover_columns(source_config(name, entry, SourceDefaults()), settings.sources_dir)
    source = NewSource(name, connector, options, list(primary_key or []), columns)
    files = dbt_files(settings.dbt_project_dir, source)
    clash = [p for p in files if p.exists()]
    if clash:
        raise ConfigError(f"{clash[0]} already exists", hint="choose another NAME")
    add_connector(settings.project_file, source)
    for file, text in files.items():
        file.write_text(text)
        console.print(f"wrote {file}", highlight=False)
    found = (
        f"{len(columns)} columns discovered" if columns else "columns not discovered: declare them"
    )
    console.print(f"added connector {name} ({connector}) to {settings.project_file}; {found}")
