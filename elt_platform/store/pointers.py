"""Environment records and their pointers in the metadata store: asset -> version, and the build
of that version the environment serves (its provenance and checks)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from elt_platform.environments import (
    CORE_ENVIRONMENTS,
    Environment,
    environment_from_name,
    kind_of,
    validate_sandbox_name,
)
from elt_platform.errors import EnvironmentExists, UnknownEnvironment, WriteNotAllowed
from elt_platform.store.metadata import MetadataStore, utc_now


@dataclass(frozen=True)
class EnvironmentRecord:
    environment: Environment
    created_at: str
    owner: str | None
    base_release: str | None
    ttl_seconds: int | None
    current_release: str | None
    config: dict

    @property
    def name(self) -> str:
        return self.environment.name


def pointers_token(pointers: dict[str, str]) -> str:
    """A short hash identifying a set of pointers (used to detect stale catalogs)."""
    return hashlib.sha256(json.dumps(sorted(pointers.items())).encode()).hexdigest()[:16]


class EnvironmentRegistry:
    """Creates environments and reads or moves their pointers."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def ensure_core(self) -> None:
        with self.meta.transaction() as tx:
            for name in CORE_ENVIRONMENTS:
                tx.execute(
                    "INSERT OR IGNORE INTO environments (name, kind, created_at) VALUES (?,?,?)",
                    (name, kind_of(name).value, utc_now()),
                )

    def create_sandbox(
        self,
        name: str,
        *,
        owner: str | None = None,
        base_release: str | None = None,
        ttl_seconds: int | None = None,
        pointers: dict[str, str] | None = None,
        builds: dict[str, str | None] | None = None,
        config: dict | None = None,
        on_commit: Callable[[sqlite3.Connection], None] | None = None,
    ) -> EnvironmentRecord:
        """Register a sandbox and (optionally) seed its pointers and their builds (a release's),
        in one transaction; `on_commit` writes related rows (e.g. an audit ledger entry) in that
        same transaction."""
        valid = validate_sandbox_name(name)
        now = utc_now()
        with self.meta.transaction() as tx:
            if _row(tx, valid) is not None:
                raise EnvironmentExists(f"environment {valid!r} already exists")
            tx.execute(
                "INSERT INTO environments (name, kind, created_at, owner, base_release,"
                " ttl_seconds, config_json) VALUES (?,?,?,?,?,?,?)",
                (valid, "sandbox", now, owner, base_release, ttl_seconds, json.dumps(config or {})),
            )
            for asset, version_id in (pointers or {}).items():
                tx.execute(
                    "INSERT INTO env_pointers (environment, asset, version_id, updated_at,"
                    " build_id) VALUES (?,?,?,?,?)",
                    (valid, asset, version_id, now, (builds or {}).get(asset)),
                )
            if on_commit is not None:
                on_commit(tx)
        return self.get(valid)

    def drop(
        self, name: str, *, on_commit: Callable[[sqlite3.Connection], None] | None = None
    ) -> None:
        env = environment_from_name(name)
        validate_sandbox_name(env.name)
        with self.meta.transaction() as tx:
            if _row(tx, env.name) is None:
                raise UnknownEnvironment(f"unknown environment {env.name!r}")
            tx.execute("DELETE FROM env_pointers WHERE environment = ?", (env.name,))
            tx.execute("DELETE FROM environments WHERE name = ?", (env.name,))
            if on_commit is not None:
                on_commit(tx)

    def get(self, name: str) -> EnvironmentRecord:
        env = environment_from_name(name)
        with self.meta.read() as con:
            row = _row(con, env.name)
        if row is None:
            raise UnknownEnvironment(f"unknown environment {env.name!r}")
        return _record(row)

    def list(self) -> list[EnvironmentRecord]:
        with self.meta.read() as con:
            rows = con.execute(
                "SELECT * FROM environments ORDER BY CASE kind WHEN 'prod' THEN 0"
                " WHEN 'staging' THEN 1 ELSE 2 END, name"
            ).fetchall()
        return [_record(r) for r in rows]

    def pointers(self, name: str) -> dict[str, str]:
        self.get(name)
        with self.meta.read() as con:
            rows = con.execute(
                "SELECT asset, version_id FROM env_pointers WHERE environment = ? ORDER BY asset",
                (name,),
            ).fetchall()
        return {r["asset"]: r["version_id"] for r in rows}

    def pointer_builds(self, name: str) -> dict[str, str | None]:
        """asset -> id of the build `name` serves for it."""
        self.get(name)
        with self.meta.read() as con:
            rows = con.execute(
                "SELECT asset, build_id FROM env_pointers WHERE environment = ?", (name,)
            ).fetchall()
        return {r["asset"]: r["build_id"] for r in rows}

    def set_pointers(
        self,
        name: str,
        pointers: dict[str, str],
        *,
        run_id: str | None,
        builds: dict[str, str | None] | None = None,
        on_commit: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Point several assets of a buildable environment at new versions, atomically. Without
        an explicit build, a pointer serves the newest build of its version; `on_commit` writes
        related rows (the audit ledger entry) in that same transaction."""
        record = self.get(name)
        if record.environment.is_prod:
            raise WriteNotAllowed("prod pointers change only by publishing a release")
        now = utc_now()
        builds = builds or {}
        with self.meta.transaction() as tx:
            for asset, version_id in pointers.items():
                build_id = builds.get(asset) or _newest_build(tx, asset, version_id)
                tx.execute(
                    "INSERT INTO env_pointers (environment, asset, version_id, updated_at, run_id,"
                    " build_id) VALUES (?,?,?,?,?,?) ON CONFLICT (environment, asset) DO UPDATE"
                    " SET version_id = excluded.version_id, updated_at = excluded.updated_at,"
                    " run_id = excluded.run_id, build_id = excluded.build_id",
                    (name, asset, version_id, now, run_id, build_id),
                )
            if on_commit is not None:
                on_commit(tx)


def _newest_build(con: sqlite3.Connection, asset: str, version_id: str) -> str | None:
    row = con.execute(
        "SELECT build_id FROM builds WHERE asset = ? AND version_id = ?"
        " ORDER BY created_at DESC, rowid DESC",
        (asset, version_id),
    ).fetchone()
    return row[0] if row else None


def _row(con: sqlite3.Connection, name: str):
    return con.execute("SELECT * FROM environments WHERE name = ?", (name,)).fetchone()


def _record(row) -> EnvironmentRecord:
    return EnvironmentRecord(
        environment=environment_from_name(row["name"]),
        created_at=row["created_at"],
        owner=row["owner"],
        base_release=row["base_release"],
        ttl_seconds=row["ttl_seconds"],
        current_release=row["current_release"],
        config=json.loads(row["config_json"] or "{}"),
    )
