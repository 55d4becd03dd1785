"""Incremental state (seen files, cursors) stored with the version it produced.

The state is keyed by (asset, version_id), not by environment: an environment's state is the
state of the version it points at, so moving a pointer back (rollback) rewinds the state with the
data and the next run re-reads exactly what the older version lacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from elt_platform.errors import UnknownVersion
from elt_platform.store.metadata import MetadataStore, utc_now
from elt_platform.store.versions import Version
from elt_platform.store.warehouse import Warehouse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS connector_state (
    asset TEXT NOT NULL,
    version_id TEXT NOT NULL,
    state_json TEXT NOT NULL,
    position_json TEXT NOT NULL,
    source_schema_json TEXT NOT NULL,
    environment TEXT,
    run_id TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (asset, version_id)
);
"""


@dataclass(frozen=True)
class SourceState:
    """What a connector knew after producing a version: its state, position and source schema."""

    state: dict[str, Any]
    position: dict[str, Any]
    source_schema: dict[str, str]


class ConnectorStateStore:
    """Reads and writes connector state rows in the metadata store."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        with self.meta.read() as con:  # create the table only if missing: no write lock
            exists = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'connector_state'"
            ).fetchone()
        if exists is None:
            with self.meta.transaction() as tx:
                tx.execute(_SCHEMA)

    def get(self, asset: str, version_id: str) -> SourceState | None:
        with self.meta.read() as con:
            row = con.execute(
                "SELECT state_json, position_json, source_schema_json FROM connector_state"
                " WHERE asset = ? AND version_id = ?",
                (asset, version_id),
            ).fetchone()
        if row is None:
            return None
        return SourceState(
            state=json.loads(row["state_json"]),
            position=json.loads(row["position_json"]),
            source_schema=json.loads(row["source_schema_json"]),
        )

    def save(
        self,
        asset: str,
        version_id: str,
        saved: SourceState,
        *,
        environment: str,
        run_id: str | None,
    ) -> None:
        """Record the state of `version_id`; an identical version re-made later keeps the newest
        state (both describe the same rows, e.g. a renamed file)."""
        with self.meta.transaction() as tx:
            tx.execute(
                "INSERT INTO connector_state (asset, version_id, state_json, position_json,"
                " source_schema_json, environment, run_id, updated_at) VALUES (?,?,?,?,?,?,?,?)"
                " ON CONFLICT (asset, version_id) DO UPDATE SET state_json = excluded.state_json,"
                " position_json = excluded.position_json,"
                " source_schema_json = excluded.source_schema_json,"
                " environment = excluded.environment, run_id = excluded.run_id,"
                " updated_at = excluded.updated_at",
                (
                    asset,
                    version_id,
                    json.dumps(saved.state, sort_keys=True, default=str),
                    json.dumps(saved.position, sort_keys=True, default=str),
                    json.dumps(saved.source_schema),
                    environment,
                    run_id,
                    utc_now(),
                ),
            )


def current_state(wh: Warehouse, asset: str, environment: str) -> tuple[Version | None, dict]:
    """The version `environment` points at for `asset` and the connector state stored with it.

    A version without state (made before connectors kept state) yields {}: the connector then
    re-reads its source and the merge drops rows the version already holds.
    """
    version_id = wh.environments.pointers(environment).get(asset)
    if version_id is None:
        return None, {}
    saved = ConnectorStateStore(wh.meta).get(asset, version_id)
    return wh.versions.get(asset, version_id), (saved.state if saved else {})


def source_schema(wh: Warehouse, asset: str, version_id: str) -> dict[str, str]:
    """The source-side schema captured when `version_id` of `asset` was extracted (for drift
    checks): column -> type as the source declared it (SQL type, JSON type, file type)."""
    saved = ConnectorStateStore(wh.meta).get(asset, version_id)
    if saved is None:
        raise UnknownVersion(f"no extraction record for version {version_id!r} of {asset!r}")
    return dict(saved.source_schema)
