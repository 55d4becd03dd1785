"""Retention enforcement: rows older than an asset's retention period are removed from every
version the platform still holds, with a ledger entry as proof (counts, version ids, cutoff;
never values).

A referenced version (by any environment or any release, collected or not) that holds expired
rows is rewritten without them as a new version (new content hash); environments and release
manifests are repointed to it, so neither reading an environment nor rolling back to an old
release can reach the rows again. An unreferenced version holding expired rows is deleted. The
metadata changes and the proof commit in one transaction; files are deleted after it commits.

Rows that reference a removed row go with it (`retention_cascade`, along the project's
relationships), in the same transaction and proof. Builds whose inputs were rewritten are marked
stale (`store.builds.STALE_INPUTS`), so the planner recomputes them and everything downstream from
the retained rows; private aggregates computed from rewritten versions are listed in the report.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from elt_platform.access.sensitivity import PRIVATE_SCHEMA_PREFIX, private_dataset_of
from elt_platform.durations import parse_period
from elt_platform.errors import EnvironmentBusy
from elt_platform.governance.retention_cascade import (
    Cascade,
    PlannedVersion,
    Rewrite,
    plan_removals,
)
from elt_platform.project.contracts.model import Contract
from elt_platform.project.policies import Action, Policies
from elt_platform.project.relationships import Relationships, load_relationships
from elt_platform.sqlident import quote_ident
from elt_platform.store.builds import STALE_INPUTS
from elt_platform.store.ledger import LedgerKind
from elt_platform.store.releases import manifest_hash


@dataclass(frozen=True)
class RetentionRule:
    asset: str
    column: str
    period: timedelta
    declared_in: str  # dbt YAML | private dataset


@dataclass
class RetentionReport:
    now: str
    cutoffs: dict[str, str] = field(default_factory=dict)
    rewrites: list[Rewrite] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # asset -> why it was not enforced
    cascades: list[Cascade] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # cycles, missing key columns
    stale_aggregates: list[str] = field(default_factory=list)  # asset@version of private releases
    ledger_seq: int | None = None

    @property
    def rows_removed(self) -> int:
        return sum(r.rows_removed for r in self.rewrites)

    @property
    def rows_expired(self) -> int:
        return sum(r.rows_expired for r in self.rewrites)

    @property
    def rows_cascaded(self) -> int:
        return sum(r.rows_cascaded for r in self.rewrites)

    @property
    def rows_anonymized(self) -> int:
        return sum(r.rows_anonymized for r in self.rewrites)

    @property
    def rewritten_assets(self) -> list[str]:
        return sorted({r.asset for r in self.rewrites})


def retention_rule(
    asset: str, policies: Policies, contracts: dict[str, Contract]
) -> RetentionRule | str:
    """The rule for `asset`, or a sentence saying why there is none."""
    dataset = private_dataset_of(asset, policies)
    if dataset is not None:
        ds = policies.privacy.datasets[dataset]
        return RetentionRule(asset, "month", parse_period(ds.retention), "private dataset")
    contract = contracts.get(asset)
    if contract is None or contract.retention_column is None:
        return "no retention_column declared (dbt meta `retention_column`)"
    if contract.retention_column == "none":
        return f"rows are not dated: {contract.retention_reason}"
    if contract.retention_period is None:
        return "no retention period declared (dbt meta `retention`)"
    return RetentionRule(asset, contract.retention_column, contract.retention_period, "dbt YAML")


def cutoff(now: datetime, period: timedelta) -> datetime:
    """The first instant kept: midnight UTC of the day `period` before `now`, so a date column
    and the timestamp it was derived from expire on the same day."""
    day = (now.astimezone(UTC) - period).date()
    return datetime(day.year, day.month, day.day)


def _expired_sql(column: str, limit: datetime) -> str:
    return f"CAST({quote_ident(column)} AS TIMESTAMP) < TIMESTAMP '{limit.isoformat(sep=' ')}'"


def enforce_retention(
    wh,
    contracts: dict[str, Contract],
    *,
    now: datetime | None = None,
    policies: Policies | None = None,
    relationships: Relationships | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Remove expired rows, and the rows referencing them, from every version of every governed
    asset (see module docstring); `relationships` default to the project's."""
    wh.authorize(Action.ENFORCE_RETENTION)
    policies = policies or wh.access.policies
    if relationships is None:
        relationships = load_relationships(wh.settings)
    now = now or datetime.now(UTC)
    report = RetentionReport(now=now.isoformat())
    actor = wh.access.identity.actor
    environments = [r.name for r in wh.environments.list()]
    # Holds the expired keys between planning and rewriting; bounded like every other step.
    duck = duckdb.connect(config=wh.settings.duckdb_config())
    try:
        duck.execute("SET TimeZone = 'UTC'")
        # No build may commit a pointer while versions are rewritten: every environment, all or
        # none, on one lock session (not one server connection per environment).
        wh.locks.acquire_all(environments, holder=f"retention by {actor}")
        plan = _plan(wh, duck, contracts, policies, relationships, now, report)
        if dry_run or not plan:
            return report
        _apply(wh, duck, plan, report, actor)
    finally:
        wh.locks.release_all()
        duck.close()
    for env in sorted({e for r in report.rewrites for e in r.environments}):
        wh.catalogs.rebuild(env)
    shutil.rmtree(wh.root / "catalogs" / "_governed", ignore_errors=True)
    return report


def _plan(wh, duck, contracts, policies, relationships, now, report) -> list[PlannedVersion]:
    """Every version that loses (or anonymizes) rows, with the conditions that say which."""
    versions = wh.versions.list()
    expired: dict[str, tuple[str, str]] = {}
    for asset in sorted({v.asset for v in versions}):
        rule = retention_rule(asset, policies, contracts)
        if isinstance(rule, str):
            report.skipped[asset] = rule
            continue
        limit = cutoff(now, rule.period)
        report.cutoffs[asset] = limit.isoformat()
        expired[asset] = (rule.column, _expired_sql(rule.column, limit))
    for version in versions:
        if version.asset in expired and expired[version.asset][0] not in version.schema_dict:
            column = expired[version.asset][0]
            report.skipped[version.asset] = f"column {column!r} is not in its schema"
    removal = plan_removals(duck, versions, expired, relationships)
    report.cascades, report.problems = removal.cascades, removal.problems
    with wh.meta.read() as meta:
        for planned in removal.versions:
            rewrite = planned.rewrite
            rewrite.environments, rewrite.releases = _references(
                meta, rewrite.asset, rewrite.old_version
            )
            report.rewrites.append(rewrite)
    changed = {(p.version.asset, p.version.version_id) for p in removal.versions}
    for version in versions:
        if version.asset.startswith(PRIVATE_SCHEMA_PREFIX):
            inputs = wh.versions.record(version.asset, version.version_id)["inputs"]
            if any((a, v) in changed for a, v in inputs.items()):
                report.stale_aggregates.append(f"{version.asset}@{version.version_id}")
    return removal.versions


def _references(tx, asset: str, version_id: str) -> tuple[list[str], list[str]]:
    envs = [
        r[0]
        for r in tx.execute(
            "SELECT environment FROM env_pointers WHERE asset = ? AND version_id = ?"
            " ORDER BY environment",
            (asset, version_id),
        )
    ]
    releases = [
        r[0]
        for r in tx.execute(
            "SELECT release_id FROM release_entries WHERE asset = ? AND version_id = ?"
            " ORDER BY release_id",
            (asset, version_id),
        )
    ]
    return envs, releases


def _apply(wh, duck, plan: list[PlannedVersion], report: RetentionReport, actor: str) -> None:
    with wh.meta.read() as con:
        referenced = {
            (a, v)
            for a, v in con.execute(
                "SELECT asset, version_id FROM env_pointers UNION"
                " SELECT asset, version_id FROM release_entries"
            )
        }
    for planned in plan:
        version, rewrite = planned.version, planned.rewrite
        if (version.asset, version.version_id) not in referenced:
            continue  # deleted below, not rewritten
        record = wh.versions.record(version.asset, version.version_id)
        # A steward rewrites versions of environments they may not write: the enforce_retention
        # action is what allows it.
        new = wh.privileged(Action.ENFORCE_RETENTION).versions.write_query(
            duck,
            version.asset,
            planned.kept_sql(),
            environment=record["environment"],
            run_id=record["run_id"],
            code_version=record["code_version"],
            inputs=record["inputs"],
            params={**record["params"], "retention_rewrite_of": version.version_id},
        )
        rewrite.new_version = new.version_id
    doomed: list[tuple[str, str]] = []
    with wh.meta.transaction() as tx:
        touched_releases: set[str] = set()
        for planned in plan:
            version, rewrite = planned.version, planned.rewrite
            envs, releases = _references(tx, version.asset, version.version_id)
            if (envs or releases) and rewrite.new_version is None:
                raise EnvironmentBusy(
                    f"{version.asset}@{version.version_id} became referenced during retention",
                    hint="run retention again; nothing was changed",
                )
            rewrite.environments, rewrite.releases = envs, releases
            for table in ("env_pointers", "release_entries") if rewrite.new_version else ():
                tx.execute(
                    f"UPDATE {table} SET version_id = ? WHERE asset = ? AND version_id = ?",
                    (rewrite.new_version, version.asset, version.version_id),
                )
            touched_releases.update(releases)
            tx.execute(
                "DELETE FROM versions WHERE asset = ? AND version_id = ?",
                (version.asset, version.version_id),
            )
            doomed.append((version.asset, version.version_id))
        _carry_metadata(
            tx, {(r.asset, r.old_version): r.new_version for r in report.rewrites if r.new_version}
        )
        rewritten_manifests = {}
        for release_id in sorted(touched_releases):
            manifest = dict(
                tx.execute(
                    "SELECT asset, version_id FROM release_entries WHERE release_id = ?",
                    (release_id,),
                ).fetchall()
            )
            rewritten_manifests[release_id] = manifest_hash(manifest)
            tx.execute(
                "UPDATE releases SET manifest_hash = ? WHERE release_id = ?",
                (rewritten_manifests[release_id], release_id),
            )
        entry = wh.ledger.append(
            LedgerKind.RETENTION_DELETED,
            actor=actor,
            environment=None,
            tx=tx,
            params={
                "as_of": report.now,
                "cutoffs": report.cutoffs,
                "rows_removed": report.rows_removed,
                "rows_expired": report.rows_expired,
                "rows_cascaded": report.rows_cascaded,
                "rows_anonymized": report.rows_anonymized,
                "versions": [r.proof() for r in report.rewrites],
                # The audit ledger checks each release manifest against the last one recorded.
                "release_manifests": rewritten_manifests,
                "cascades": [c.proof() for c in report.cascades],
                "problems": report.problems,
            },
            assets=_new_versions_by_asset(report.rewrites),
        )
        report.ledger_seq = entry.seq
    for asset, version_id in doomed:
        wh.privileged(Action.ENFORCE_RETENTION).versions.discard_files(asset, version_id)


def _new_versions_by_asset(rewrites: list[Rewrite]) -> dict[str, str]:
    grouped: dict[str, set[str]] = {}
    for r in rewrites:
        if r.new_version:
            grouped.setdefault(r.asset, set()).add(r.new_version)
    return {asset: ",".join(sorted(vids)) for asset, vids in grouped.items()}


# Tables of other modules keyed by (asset, version_id) whose rows must follow a rewritten version:
# a connector's incremental state (so the next load does not re-read what retention removed).
_VERSION_KEYED = ("connector_state",)


def _carry_metadata(tx, mapping: dict[tuple[str, str], str]) -> None:
    """Point version-keyed metadata, build records and every recorded input (provenance) at the
    new versions; a build whose inputs moved is marked stale (computed from removed rows)."""
    if not mapping:
        return
    tables = {r[0] for r in tx.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in ("versions", "builds"):
        if table not in tables:
            continue
        rows = tx.execute(
            f"SELECT rowid, inputs_json, params_json FROM {table} WHERE inputs_json <> '{{}}'"
        )
        for rowid, raw, raw_params in rows.fetchall():
            inputs = json.loads(raw)
            remapped = {a: mapping.get((a, v), v) for a, v in inputs.items()}
            if remapped != inputs:
                params = json.loads(raw_params or "{}")
                moved = {a for a in inputs if remapped[a] != inputs[a]}
                params[STALE_INPUTS] = sorted(moved | set(params.get(STALE_INPUTS, ())))
                tx.execute(
                    f"UPDATE {table} SET inputs_json = ?, params_json = ? WHERE rowid = ?",
                    (
                        json.dumps(remapped, sort_keys=True),
                        json.dumps(params, sort_keys=True),
                        rowid,
                    ),
                )
    # A build keeps its identity (pointers and releases name it) and now holds the rewrite.
    for (asset, old), new in mapping.items():
        tx.execute(
            "UPDATE builds SET version_id = ? WHERE asset = ? AND version_id = ?",
            (new, asset, old),
        )
    for table in _VERSION_KEYED:
        if table not in tables:
            continue
        columns = [r[1] for r in tx.execute(f"PRAGMA table_info({table})")]
        chosen = ", ".join("?" if c == "version_id" else c for c in columns)
        for (asset, old), new in mapping.items():
            tx.execute(
                f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) SELECT {chosen} FROM {table}"
                " WHERE asset = ? AND version_id = ?",
                (new, asset, old),
            )
            tx.execute(f"DELETE FROM {table} WHERE asset = ? AND version_id = ?", (asset, old))
