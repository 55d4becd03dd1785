"""The experiment record of a sandbox: a JSON artifact that says what was tried and what came out.

It holds the source release, flags and vars, code version (git commit + dirty hash), seed, input
versions, the runs and the versions they produced, diff summaries and check results. The metadata
store row is the source of truth (updates are read-modify-write inside one SQLite transaction);
`warehouse/experiments/<sandbox>.json` mirrors it as a file people and tools can read. When a
sandbox is dropped or pruned the record moves to `experiments/archive/` and stays queryable.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elt_platform.errors import UnknownExperiment
from elt_platform.store.metadata import MetadataStore, utc_now

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id TEXT PRIMARY KEY,
    sandbox TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    path TEXT NOT NULL,
    record_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_experiments_sandbox ON experiments(sandbox, status);
"""
ACTIVE = "active"
MAX_RUNS_KEPT = 50  # the record stays small; the Dagster event log keeps the full history


class ExperimentStore:
    """Reads and writes experiment records under `<warehouse>/experiments`."""

    def __init__(self, root: Path, meta: MetadataStore) -> None:
        self.dir = Path(root) / "experiments"
        self.meta = meta
        with meta.read() as con:
            con.executescript(SCHEMA)

    def path(self, sandbox: str) -> Path:
        return self.dir / f"{sandbox}.json"

    def start(self, record: dict[str, Any], tx: sqlite3.Connection | None = None) -> dict[str, Any]:
        """Insert the first version of a sandbox's record (in `tx` when given, so it commits with
        the sandbox itself); call `write_file` once that transaction has committed."""
        record = {**record, "status": ACTIVE, "updated_at": record["created_at"]}
        row = (
            record["experiment_id"],
            record["sandbox"],
            ACTIVE,
            record["created_at"],
            record["created_at"],
            str(self.path(record["sandbox"])),
            _dumps(record),
        )
        sql = (
            "INSERT INTO experiments (experiment_id, sandbox, status, created_at, updated_at,"
            " path, record_json) VALUES (?,?,?,?,?,?,?)"
        )
        if tx is not None:
            tx.execute(sql, row)
            return record
        with self.meta.transaction() as own:
            own.execute(sql, row)
        self.write_file(record)
        return record

    def write_file(self, record: dict[str, Any]) -> None:
        _write_json(self.path(record["sandbox"]), record)

    def discard(self, experiment_id: str, sandbox: str) -> None:
        """Remove a record whose sandbox could not be completed (creation rolled back)."""
        with self.meta.transaction() as tx:
            tx.execute("DELETE FROM experiments WHERE experiment_id = ?", (experiment_id,))
        self.path(sandbox).unlink(missing_ok=True)

    def get(self, sandbox: str, *, include_archived: bool = True) -> dict[str, Any]:
        """The active record of `sandbox`, else (optionally) its most recent archived one."""
        with self.meta.read() as con:
            row = con.execute(
                "SELECT record_json FROM experiments WHERE sandbox = ?"
                " ORDER BY status = 'active' DESC, created_at DESC LIMIT 1",
                (sandbox,),
            ).fetchone()
        if row is None:
            raise UnknownExperiment(f"no experiment record for sandbox {sandbox!r}")
        record = json.loads(row[0])
        if record["status"] != ACTIVE and not include_archived:
            raise UnknownExperiment(f"sandbox {sandbox!r} has only archived records")
        return record

    def update(self, sandbox: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply `change` to the active record atomically and refresh the JSON file."""
        with self.meta.transaction() as tx:
            row = tx.execute(
                "SELECT experiment_id, record_json FROM experiments WHERE sandbox = ?"
                " AND status = ?",
                (sandbox, ACTIVE),
            ).fetchone()
            if row is None:
                raise UnknownExperiment(f"no active experiment record for sandbox {sandbox!r}")
            record = json.loads(row[1])
            change(record)
            record["runs"] = record.get("runs", [])[-MAX_RUNS_KEPT:]
            record["updated_at"] = utc_now()
            tx.execute(
                "UPDATE experiments SET record_json = ?, updated_at = ? WHERE experiment_id = ?",
                (_dumps(record), record["updated_at"], row[0]),
            )
        _write_json(self.path(sandbox), record)
        return record

    def archive(self, sandbox: str, status: str, summary: dict[str, Any]) -> Path | None:
        """Close the active record with `status` (dropped/pruned) and move its file to archive/."""
        target: Path | None = None
        with self.meta.transaction() as tx:
            row = tx.execute(
                "SELECT experiment_id, record_json FROM experiments WHERE sandbox = ?"
                " AND status = ?",
                (sandbox, ACTIVE),
            ).fetchone()
            if row is None:
                return None
            record = json.loads(row[1])
            record.update(status=status, archived_at=utc_now(), archive_summary=summary)
            target = self.dir / "archive" / f"{row[0]}.json"
            tx.execute(
                "UPDATE experiments SET status = ?, updated_at = ?, path = ?, record_json = ?"
                " WHERE experiment_id = ?",
                (status, record["archived_at"], str(target), _dumps(record), row[0]),
            )
        _write_json(target, record)
        self.path(sandbox).unlink(missing_ok=True)
        return target

    def list(self) -> list[dict[str, Any]]:
        with self.meta.read() as con:
            rows = con.execute("SELECT record_json FROM experiments ORDER BY created_at").fetchall()
        return [json.loads(r[0]) for r in rows]


def record_run(
    record: dict[str, Any],
    *,
    run_id: str,
    rebuilt: dict[str, str],
    reused: dict[str, str],
    config: dict[str, Any],
    code_version: dict[str, Any],
    checks: dict[str, dict[str, Any]],
    diffs: dict[str, dict[str, Any]],
    outputs: dict[str, str],
) -> None:
    """Fold one sandbox run into its record (called inside `ExperimentStore.update`)."""
    record.setdefault("runs", []).append(
        {
            "run_id": run_id,
            "at": utc_now(),
            "rebuilt": rebuilt,
            "reused": sorted(reused),
            "config": config,
            "code_version": code_version,
        }
    )
    record["config"] = config
    record["code_version"] = code_version
    record["outputs"] = outputs
    record.setdefault("checks", {}).update(checks)
    record.setdefault("diff_summary", {}).update(diffs)


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def _write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
