"""`elt contracts check|diff`: contract compliance and schema evolution."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import PROD
from elt_platform.project.contracts.evolution import (
    breaking_change_approved,
    classify_contract_change,
    classify_schema_change,
)
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.contracts.model import Contract
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.settings import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)


@app.command("check")
def check() -> None:
    """Read every dataset's contract from the dbt YAML: a malformed declaration is one line naming
    its file and key (exit 2); otherwise list which datasets the contract gate checks."""
    settings = load_settings()
    prepare_manifest(load_dbt_project(settings))
    contracts = contracts_for(settings)
    gated = sorted(a for a, c in contracts.items() if c.gated)
    for asset in gated:
        columns = [c.name for c in contracts[asset].columns if c.checkable]
        console.print(f"[green]✓[/] {asset}: {len(columns)} checked columns", highlight=False)
    console.print(
        f"{len(contracts)} datasets declared in the dbt YAML, {len(gated)} with a contract gate"
    )


@app.command("diff")
def diff(
    against: str = typer.Option(PROD, "--against", help="prod, an environment, or a release id."),
    environment: str = typer.Option("staging", "--env", help="Environment to compare."),
) -> None:
    """Classify contract and produced-schema changes against prod (or another environment or
    release), with every downstream asset each change affects."""
    # Dagster + dbt (~4 s to import): only for `diff`, which needs the asset graph.
    from elt_platform.launch.runs import load_definitions
    from elt_platform.promotion.jobs import downstream_closure

    settings = load_settings()
    wh = open_warehouse(settings)
    contracts = contracts_for(settings)  # malformed -> one line naming file and key
    if against in {r.name for r in wh.environments.list()}:
        record = wh.environments.get(against)
        release = wh.releases.get(record.current_release) if record.current_release else None
        baseline = wh.environments.pointers(against)
    else:
        release = wh.releases.get(against)
        baseline = release.manifest
    recorded = (release.gate_summary or {}).get("contracts", {}) if release else {}
    # Start-up cost: Dagster and the Definitions load only for this command.

    graph = load_definitions(settings).resolve_asset_graph()
    current = wh.environments.pointers(environment)
    breaking_total = 0
    for name in sorted(set(contracts) | set(current)):
        changes = []
        if name in contracts and name in recorded:
            old = Contract.model_validate(recorded[name])
            changes += classify_contract_change(old, contracts[name])
            if breaking_change_approved(old, contracts[name]):
                console.print(
                    f"{name}: major bump {old.version} -> {contracts[name].version} "
                    f"approved ({contracts[name].migration_note})"
                )
                changes = [c for c in changes if not c.breaking]
        if name in current and name in baseline and current[name] != baseline[name]:
            old_schema = wh.versions.get(name, baseline[name]).schema_dict
            new_schema = wh.versions.get(name, current[name]).schema_dict
            seen = {(c.column, c.breaking) for c in changes}
            changes += [
                c
                for c in classify_schema_change(name, old_schema, new_schema)
                if (c.column, c.breaking) not in seen
            ]
        if not changes:
            continue
        known = {k.to_user_string() for k in graph.materializable_asset_keys}
        downstream = (
            [a for a in downstream_closure(graph, [name]) if a != name] if name in known else []
        )
        for change in changes:
            breaking_total += change.breaking
            style = "red" if change.breaking else "green"
            console.print(f"[{style}]{change}[/]", highlight=False)
        if downstream:
            console.print(f"  affects downstream: {', '.join(downstream)}")
    console.print(f"{breaking_total} breaking change(s) against {against}")
    if breaking_total:
        raise typer.Exit(1)
