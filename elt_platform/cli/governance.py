"""`elt governance`: compliance check, identity, contract changes, retention, private releases."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from elt_platform.access.facade import open_warehouse
from elt_platform.access.identity import identity_problem, strict_auth
from elt_platform.environments import PROD
from elt_platform.errors import ConfigError
from elt_platform.settings import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 200)


@app.command("check")
def check(
    installation: bool = typer.Option(
        True, help="Also check what this installation's environments serve (if it exists)."
    ),
) -> None:
    """Fail (exit 1) naming each asset/column that breaks a governance rule."""
    from elt_platform.checks.compliance import check_compliance

    settings = load_settings()
    wh = open_warehouse(settings) if installation and settings.has_metadata else None
    report = check_compliance(settings, wh=wh)
    for violation in report.violations:
        console.print(f"[red]violation[/] {escape(str(violation))}", highlight=False)
    summary = f"{report.assets} assets, {report.columns} columns, {report.roles} roles" + (
        f", {report.sandboxes} sandboxes" if wh is not None else ""
    )
    if not report.ok:
        console.print(
            f"[bold red]not compliant:[/] {len(report.violations)} violations ({summary})"
        )
        raise typer.Exit(1)
    console.print(f"compliant: {summary} checked")


@app.command("whoami")
def whoami() -> None:
    """Show the identity and role commands run as, and what that role may do."""
    wh = open_warehouse(load_settings())
    who, role = wh.access.identity, wh.access.role()
    console.print(f"user {who.user}  role {who.role}  (from {who.source})", highlight=False)
    console.print(f"read: {', '.join(role.read) or '-'}   write: {', '.join(role.write) or '-'}")
    console.print(
        f"unmasked: {', '.join(sorted(role.unmasked_levels)) or '-'}   "
        f"actions: {', '.join(role.actions) or '-'}"
    )
    policies = wh.access.policies
    pinned = policies.users.get(who.user)
    mode = "strict" if strict_auth(policies) else "open"
    console.print(
        f"authentication: {mode}   pinned roles: {', '.join(pinned) if pinned else '-'}   "
        f"runs without identity tags act as: {policies.auth.untagged_runs}",
        highlight=False,
    )
    problem = identity_problem(policies, who)
    if problem:
        console.print(f"[red]refused: {problem}[/]", highlight=False)


@app.command("contract")
def contract(
    dataset: str = typer.Argument(..., help="Asset whose dbt-YAML declaration to record."),
) -> None:
    """Record a dataset's current declaration (its dbt YAML) in the audit ledger (stewards)."""
    from elt_platform.governance.contract_changes import record_contract_change

    change = record_contract_change(open_warehouse(load_settings()), dataset)
    if not change.recorded:
        console.print(f"{change.dataset} {change.version}: unchanged since it was last recorded")
        return
    console.print(
        f"recorded {change.dataset} {change.version} (ledger entry {change.ledger_seq}): "
        + "; ".join(change.changes)
    )


@app.command("retention")
def retention(
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be removed."),
    as_of: str = typer.Option(None, "--as-of", help="Pretend today is this date (dry runs only)."),
    recompute: bool = typer.Option(
        True, help="Rebuild in staging the models derived from rewritten versions."
    ),
) -> None:
    """Remove rows older than each asset's retention, and the rows referencing them, from every
    version still held (ledgered); then recompute in staging what was derived from them."""
    from elt_platform.launch.retention import enforce_and_recompute

    if as_of and not dry_run:
        raise ConfigError("--as-of is only allowed with --dry-run", hint="add --dry-run")
    wh = open_warehouse(load_settings())
    now = _date(as_of) if as_of else None
    run = enforce_and_recompute(wh, now=now, dry_run=dry_run, recompute=recompute)
    report = run.report
    table = Table(
        "asset", "version", "rows", "expired", "cascaded", "anonymized", "new version",
        "environments", "releases",
    )  # fmt: skip
    for r in report.rewrites:
        table.add_row(
            r.asset,
            r.old_version,
            f"{r.rows_before:,}",
            f"{r.rows_expired:,}",
            f"{r.rows_cascaded:,}",
            f"{r.rows_anonymized:,}",
            r.new_version or ("-" if dry_run else "deleted"),
            ", ".join(r.environments) or "-",
            str(len(r.releases)),
        )
    console.print(table)
    for c in report.cascades:
        console.print(
            f"cascade {c.relationship} ({c.relationship.on_parent_expired}): {c.parent_keys:,} "
            f"expired keys, {c.rows:,} rows in {len(c.versions)} versions",
            highlight=False,
        )
    for problem in report.problems:
        console.print(f"[yellow]not cascaded:[/] {escape(problem)}", highlight=False)
    for aggregate in report.stale_aggregates:
        console.print(f"[yellow]released aggregate computed from removed rows:[/] {aggregate}")
    verb = "would remove" if dry_run else "removed"
    seq = f" (ledger entry {report.ledger_seq})" if report.ledger_seq else ""
    console.print(
        f"{verb} {report.rows_removed:,} rows: {report.rows_expired:,} expired directly, "
        f"{report.rows_cascaded:,} by cascade; {report.rows_anonymized:,} anonymized{seq}"
    )
    _print_recompute(run, dry_run)


def _print_recompute(run, dry_run: bool) -> None:
    if not run.recompute:
        return
    models = ", ".join(run.recompute)
    if dry_run or run.outcome is None:
        why = "dry run" if dry_run else run.not_launched
        console.print(f"to recompute in staging: {models} ({why})")
        return
    outcome = run.outcome
    redone = sorted(a.asset for a in outcome.assets.values() if a.recomputed)
    if not outcome.success:
        console.print(f"[red]recompute run {outcome.run_id} failed:[/] {outcome.error}")
        raise typer.Exit(1)
    console.print(
        f"recomputed in staging (run {outcome.run_id}): {', '.join(redone) or 'nothing'}; "
        "promote with `elt promote`"
    )


@app.command("dp-release")
def dp_release(
    dataset: str = typer.Argument("orders_by_region_month", help="Private dataset."),
    consumer: str = typer.Option(..., "--consumer", help="Who receives it (lowercase id)."),
    epsilon: float = typer.Option(..., "--epsilon", help="Privacy loss of this release."),
    delta: float = typer.Option(0.0, "--delta", help="Gaussian mechanism only."),
    mechanism: str = typer.Option("laplace", "--mechanism", help="laplace or gaussian."),
    source: str = typer.Option(PROD, "--from", help="Environment whose marts are aggregated."),
    target: str = typer.Option(PROD, "--to", help="Environment to publish into."),
) -> None:
    """Publish a differentially private aggregate, charged to the consumer's privacy budget."""
    from elt_platform.governance.aggregates import release_private_aggregate

    result = release_private_aggregate(
        open_warehouse(load_settings()),
        dataset=dataset,
        consumer=consumer,
        epsilon=epsilon,
        delta=delta,
        mechanism=mechanism,
        source_environment=source,
        target_environment=target,
    )
    where = f"release {result.release_id}" if result.release_id else result.environment
    console.print(
        f"published {result.asset}@{result.version_id} to {where}: {result.cells} cells, "
        f"{mechanism} noise (count scale {result.count_noise.scale:g}, revenue scale "
        f"{result.revenue_noise.scale:g}); budget {result.budget.spent_epsilon:g} of "
        f"{result.budget.budget.epsilon:g} epsilon spent"
    )


@app.command("budget")
def budget() -> None:
    """Privacy budget spent per dataset and consumer."""
    from elt_platform.governance.budget import all_spend
    from elt_platform.project.project_file import load_policies

    settings = load_settings()
    policies = load_policies(settings)
    table = Table("dataset", "consumer", "releases", "epsilon spent", "epsilon budget", "delta")
    for dataset, consumer, eps, delta, n in all_spend(open_warehouse(settings).meta):
        ds = policies.privacy.datasets.get(dataset)
        limit = f"{ds.budget_for(consumer).epsilon:g}" if ds else "-"
        table.add_row(dataset, consumer, str(n), f"{eps:g}", limit, f"{delta:g}")
    console.print(table)


def _date(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"cannot read --as-of {text!r}", hint="use a date: 2031-07-01") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
