"""Which rows retention removes from each version: the expired ones, closed over relationships.

Assets are visited parents first (topological order of the relationship graph). A version loses
its expired rows plus every row whose referencing column holds a key its parent lost: a key of
the parent's removed rows (in any version) that no retained row of any version of the parent still
holds. A child whose column says `on_parent_expired: anonymize` keeps such rows with the column
set to NULL instead. Keys live in temporary DuckDB tables of the one connection that also writes
the rewrites, so no key value ever leaves DuckDB; the proof holds counts and version ids only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import duckdb

from elt_platform.project.relationships import DELETE, Relationship, Relationships
from elt_platform.sqlident import quote_ident
from elt_platform.store.versions import Version


@dataclass
class Rewrite:
    asset: str
    old_version: str
    new_version: str | None  # None: the version was unreferenced and is deleted
    rows_before: int
    rows_removed: int  # expired + cascaded
    rows_expired: int = 0  # past the asset's own retention
    rows_anonymized: int = 0  # kept, referencing column set to NULL
    environments: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)

    @property
    def rows_cascaded(self) -> int:
        return self.rows_removed - self.rows_expired

    def proof(self) -> dict:
        return {
            "asset": self.asset,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "rows_before": self.rows_before,
            "rows_removed": self.rows_removed,
            "rows_expired": self.rows_expired,
            "rows_cascaded": self.rows_cascaded,
            "rows_anonymized": self.rows_anonymized,
            "environments": self.environments,
            "releases": self.releases,
        }


@dataclass
class Cascade:
    """What one relationship removed (or anonymized): per version, rows not expired themselves."""

    relationship: Relationship
    parent_keys: int  # keys of the parent that expired everywhere
    versions: dict[str, int] = field(default_factory=dict)  # child version -> rows

    @property
    def rows(self) -> int:
        return sum(self.versions.values())

    def proof(self) -> dict:
        r = self.relationship
        return {
            "relationship": str(r),
            "action": r.on_parent_expired,
            "declared_by": r.declared_by,
            "lifted_from": r.lifted_from,
            "parent_keys": self.parent_keys,
            "rows": self.rows,
            "versions": [{"version": v, "rows": n} for v, n in sorted(self.versions.items())],
        }


@dataclass
class PlannedVersion:
    version: Version
    rewrite: Rewrite
    remove: str  # SQL condition: the row goes
    anonymize: dict[str, str] = field(default_factory=dict)  # column -> condition: set to NULL

    def kept_sql(self) -> str:
        """The version's content after retention."""
        replace = ", ".join(
            f"CASE WHEN {cond} THEN NULL ELSE {quote_ident(c)} END AS {quote_ident(c)}"
            for c, cond in sorted(self.anonymize.items())
        )
        star = f"* REPLACE ({replace})" if replace else "*"
        return f"SELECT {star} FROM {self.version.scan_sql} WHERE NOT ({self.remove})"


@dataclass
class RemovalPlan:
    versions: list[PlannedVersion] = field(default_factory=list)  # those that change
    cascades: list[Cascade] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def plan_removals(
    duck: duckdb.DuckDBPyConnection,
    versions: Iterable[Version],
    expired: Mapping[str, tuple[str, str]],
    relationships: Relationships,
) -> RemovalPlan:
    """Plan every version's removals. `expired`: asset -> (date column, SQL condition of its
    expired rows); `relationships` decide the cascade."""
    by_asset: dict[str, list[Version]] = {}
    for version in versions:
        by_asset.setdefault(version.asset, []).append(version)
    plan = RemovalPlan(problems=relationships.problems())
    referenced = {(r.parent, r.parent_column) for r in relationships.acyclic()}
    keys: dict[tuple[str, str], tuple[str, int]] = {}  # (parent, column) -> (table, key count)
    cascades: dict[Relationship, Cascade] = {}
    for asset in relationships.order(by_asset):
        removals = {}
        for version in by_asset[asset]:
            removals[version.version_id] = _plan_version(
                duck, version, expired.get(asset), relationships, keys, cascades, plan
            )
        for column in sorted(c for a, c in referenced if a == asset):
            freed = _expired_keys(duck, asset, column, by_asset[asset], removals, len(keys), plan)
            if freed is not None:
                keys[(asset, column)] = freed
    plan.cascades = [c for c in cascades.values() if c.versions]
    return plan


def _plan_version(duck, version, expired, relationships, keys, cascades, plan) -> str:
    """Plan one version (appending to `plan` when it changes); returns its removal condition."""
    columns = version.schema_dict
    direct = "false"
    if expired is not None and expired[0] in columns:
        direct = f"coalesce({expired[1]}, false)"
    deletes: list[tuple[Relationship, str]] = []
    anonymizes: list[tuple[Relationship, str]] = []
    for r in relationships.parents_of(version.asset):
        if (r.parent, r.parent_column) not in keys:
            continue  # the parent lost no key
        if r.child_column not in columns:
            plan.problems.append(
                f"{r}: column {r.child_column!r} is not in {version.asset}@{version.version_id}"
            )
            continue
        table, count = keys[(r.parent, r.parent_column)]
        cascades.setdefault(r, Cascade(r, count))
        condition = f"coalesce({quote_ident(r.child_column)} IN (SELECT k FROM {table}), false)"
        (deletes if r.on_parent_expired == DELETE else anonymizes).append((r, condition))
    remove = " OR ".join([direct, *(c for _, c in deletes)])
    anonymized = " OR ".join(c for _, c in anonymizes) or "false"
    counts = [
        f"count(*) FILTER (WHERE {direct})",
        f"count(*) FILTER (WHERE {remove})",
        f"count(*) FILTER (WHERE ({anonymized}) AND NOT ({remove}))",
        *(f"count(*) FILTER (WHERE {c} AND NOT ({direct}))" for _, c in deletes),
        *(f"count(*) FILTER (WHERE {c} AND NOT ({remove}))" for _, c in anonymizes),
    ]
    row = duck.execute(f"SELECT {', '.join(counts)} FROM {version.scan_sql}").fetchone()
    n_expired, n_removed, n_anonymized, *per_relationship = row
    for (r, _), rows in zip([*deletes, *anonymizes], per_relationship, strict=True):
        if rows:
            cascades[r].versions[version.version_id] = rows
    if n_removed or n_anonymized:
        by_column: dict[str, list[str]] = {}
        for r, condition in anonymizes:
            by_column.setdefault(r.child_column, []).append(condition)
        rewrite = Rewrite(
            version.asset, version.version_id, None, version.rows, n_removed, n_expired
        )
        rewrite.rows_anonymized = n_anonymized
        anonymize = {c: " OR ".join(conds) for c, conds in by_column.items()}
        plan.versions.append(PlannedVersion(version, rewrite, remove, anonymize))
    return remove


def _expired_keys(duck, asset, column, versions, removals, n, plan) -> tuple[str, int] | None:
    """A temp table of `asset.column` keys that retention removes from every version holding
    them, and how many there are; None when there are none."""
    removed, kept = [], []
    for version in versions:
        if column not in version.schema_dict:
            plan.problems.append(
                f"{asset}.{column}: not in {asset}@{version.version_id}; its keys are not cascaded"
            )
            continue
        cond = removals[version.version_id]
        key = f"SELECT {quote_ident(column)} AS k FROM {version.scan_sql}"
        removed.append(f"{key} WHERE ({cond}) AND {quote_ident(column)} IS NOT NULL")
        kept.append(f"{key} WHERE NOT ({cond})")
    if not removed:
        return None
    table = f"_retention_keys_{n}"
    duck.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS "
        f"({' UNION ALL '.join(removed)}) EXCEPT ({' UNION ALL '.join(kept)})"
    )
    count = duck.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if not count:
        duck.execute(f"DROP TABLE {table}")
        return None
    return table, count
