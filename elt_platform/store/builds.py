"""Build records: each materialization of a version, with its own provenance and check outcomes.

Versions are content-addressed, so one version can be produced by several builds (a staging
rebuild whose content matches a sandbox's). Provenance belongs to the build: environment, run,
code version, input versions, parameters, whether its inputs were masked, the checks evaluated on
it. A reused build (nothing recomputed) is a build of its own that names the build it reuses and
carries that build's checks over. Pointers and release entries point at builds.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from elt_platform.store.metadata import MetadataStore, utc_now

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
# Build param set by retention: the inputs it names were rewritten without some rows, so what the
# build computed still reflects rows that no longer exist (the planner recomputes it).
STALE_INPUTS = "stale_inputs"


@dataclass(frozen=True)
class Build:
    build_id: str
    asset: str
    version_id: str
    environment: str
    run_id: str | None
    created_at: str
    code_version: str | None
    inputs: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    masked: bool = False
    reused_from: str | None = None  # the build whose computation this one reuses


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    status: str  # passed | failed | skipped
    blocking: bool
    detail: str = ""
    carried_from: str | None = None  # build where it was evaluated, when carried over

    @property
    def passed(self) -> bool:
        return self.status == PASSED


def new_build_id() -> str:
    return f"b{uuid.uuid4().hex[:15]}"


def insert_build(
    tx: sqlite3.Connection,
    *,
    asset: str,
    version_id: str,
    environment: str,
    run_id: str | None,
    code_version: str | None,
    inputs: Mapping[str, str] | None,
    params: Mapping[str, object] | None,
    masked: bool,
    reused_from: str | None = None,
) -> str:
    """Inside `tx` (the version commit's transaction): record one build; returns its id."""
    build_id = new_build_id()
    tx.execute(
        "INSERT INTO builds (build_id, asset, version_id, environment, run_id, created_at,"
        " code_version, inputs_json, params_json, masked, reused_from)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            build_id,
            asset,
            version_id,
            environment,
            run_id,
            utc_now(),
            code_version,
            json.dumps(dict(inputs or {}), sort_keys=True),
            json.dumps(dict(params or {}), sort_keys=True, default=str),
            int(masked),
            reused_from,
        ),
    )
    return build_id


class BuildStore:
    """Reads build records and their checks; records reuse and check outcomes."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def get(self, build_id: str) -> Build | None:
        with self.meta.read() as con:
            row = con.execute("SELECT * FROM builds WHERE build_id = ?", (build_id,)).fetchone()
        return _build(row) if row else None

    def many(self, build_ids: Iterable[str]) -> dict[str, Build]:
        ids = sorted({b for b in build_ids if b})
        if not ids:
            return {}
        with self.meta.read() as con:
            rows = con.execute(
                f"SELECT * FROM builds WHERE build_id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
        return {r["build_id"]: _build(r) for r in rows}

    def latest(self, asset: str, version_id: str, environment: str | None = None) -> Build | None:
        """The newest build of a version (in `environment` when given, else anywhere)."""
        sql = "SELECT * FROM builds WHERE asset = ? AND version_id = ?"
        args: tuple = (asset, version_id)
        if environment is not None:
            sql, args = sql + " AND environment = ?", (*args, environment)
        with self.meta.read() as con:
            row = con.execute(sql + " ORDER BY created_at DESC, rowid DESC", args).fetchone()
        return _build(row) if row else None

    def origin(self, build: Build) -> Build:
        """The build that actually computed the content (following reuse)."""
        seen = {build.build_id}
        while build.reused_from:
            found = self.get(build.reused_from)
            if found is None or found.build_id in seen:
                break
            seen.add(found.build_id)
            build = found
        return build

    def reuse(self, origin: Build, *, environment: str, run_id: str | None) -> Build:
        """Record that `run_id` reuses `origin`'s computation in `environment`, checks included
        (they held for exactly this content, inputs and code)."""
        with self.meta.transaction() as tx:
            build_id = insert_build(
                tx,
                asset=origin.asset,
                version_id=origin.version_id,
                environment=environment,
                run_id=run_id,
                code_version=origin.code_version,
                inputs=origin.inputs,
                params=origin.params,
                masked=origin.masked,
                # Always the build that computed it, so the chain never grows run after run.
                reused_from=origin.reused_from or origin.build_id,
            )
            tx.execute(
                "INSERT INTO build_checks (build_id, check_name, status, blocking, detail,"
                " carried_from) SELECT ?, check_name, status, blocking, detail,"
                " coalesce(carried_from, build_id) FROM build_checks WHERE build_id = ?",
                (build_id, origin.build_id),
            )
        found = self.get(build_id)
        assert found is not None
        return found

    def record_checks(self, build_id: str, outcomes: Iterable[CheckOutcome]) -> None:
        """Store check outcomes evaluated on a build (a newer evaluation replaces a carried one)."""
        rows = [
            (build_id, o.name, o.status, int(o.blocking), o.detail[:2000], o.carried_from)
            for o in outcomes
        ]
        if not rows:
            return
        with self.meta.transaction() as tx:
            tx.executemany(
                "INSERT INTO build_checks (build_id, check_name, status, blocking, detail,"
                " carried_from) VALUES (?,?,?,?,?,?) ON CONFLICT (build_id, check_name) DO UPDATE"
                " SET status = excluded.status, blocking = excluded.blocking,"
                " detail = excluded.detail, carried_from = excluded.carried_from",
                rows,
            )

    def checks(self, build_id: str) -> dict[str, CheckOutcome]:
        with self.meta.read() as con:
            rows = con.execute(
                "SELECT check_name, status, blocking, detail, carried_from FROM build_checks"
                " WHERE build_id = ? ORDER BY check_name",
                (build_id,),
            ).fetchall()
        return {r[0]: CheckOutcome(r[0], r[1], bool(r[2]), r[3] or "", r[4]) for r in rows}

    def for_version(self, asset: str, version_id: str) -> list[Build]:
        """Every build of a version, oldest first."""
        with self.meta.read() as con:
            rows = con.execute(
                "SELECT * FROM builds WHERE asset = ? AND version_id = ?"
                " ORDER BY created_at, rowid",
                (asset, version_id),
            ).fetchall()
        return [_build(r) for r in rows]

    def record_run_outcome(self, run_id: str, status: str) -> None:
        """Remember how a finished run ended (its launcher knows), so planning can tell whether
        its builds are usable without asking the orchestrator."""
        with self.meta.transaction() as tx:
            tx.execute(
                "INSERT INTO run_outcomes (run_id, status, recorded_at) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET status = excluded.status,"
                " recorded_at = excluded.recorded_at",
                (run_id, status, utc_now()),
            )

    def run_outcomes(self, run_ids: Iterable[str | None]) -> dict[str, str]:
        """run id -> recorded final status, for the runs whose launcher recorded one."""
        ids = sorted({r for r in run_ids if r})
        if not ids:
            return {}
        with self.meta.read() as con:
            marks = ",".join("?" * len(ids))
            rows = con.execute(
                f"SELECT run_id, status FROM run_outcomes WHERE run_id IN ({marks})", ids
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def in_run(self, run_id: str) -> list[Build]:
        with self.meta.read() as con:
            rows = con.execute(
                "SELECT * FROM builds WHERE run_id = ? ORDER BY created_at, rowid", (run_id,)
            ).fetchall()
        return [_build(r) for r in rows]


def delete_builds_of(tx: sqlite3.Connection, pairs: Iterable[tuple[str, str]]) -> None:
    """Inside `tx`: forget the builds (and their checks) of deleted versions."""
    for asset, version_id in pairs:
        tx.execute(
            "DELETE FROM build_checks WHERE build_id IN"
            " (SELECT build_id FROM builds WHERE asset = ? AND version_id = ?)",
            (asset, version_id),
        )
        tx.execute("DELETE FROM builds WHERE asset = ? AND version_id = ?", (asset, version_id))


def _build(row) -> Build:
    return Build(
        build_id=row["build_id"],
        asset=row["asset"],
        version_id=row["version_id"],
        environment=row["environment"],
        run_id=row["run_id"],
        created_at=row["created_at"],
        code_version=row["code_version"],
        inputs=json.loads(row["inputs_json"] or "{}"),
        params=json.loads(row["params_json"] or "{}"),
        masked=bool(row["masked"]),
        reused_from=row["reused_from"],
    )
