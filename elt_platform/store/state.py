"""The platform state a ledger entry commits to: every environment (record, current release,
pointers) and every release (manifest, collected or not), hashed, so `verify` can tell whether
the metadata store still holds the state the last entry recorded, and name what moved."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from elt_platform.environments import CORE_ENVIRONMENTS


def _digest(value: Any, size: int = 16) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:size]


def state_snapshot(con: sqlite3.Connection) -> dict[str, Any]:
    """The state as of `con`'s transaction (call it inside the transaction that changed it)."""
    pointers: dict[str, list[tuple[str, str]]] = {}
    for env, asset, version_id in con.execute(
        "SELECT environment, asset, version_id FROM env_pointers ORDER BY environment, asset"
    ):
        pointers.setdefault(env, []).append((asset, version_id))
    environments = {
        name: {
            "record": _digest([kind, owner, base], 8),
            "current_release": current,
            "pointers": _digest(pointers.get(name, [])),
        }
        for name, kind, owner, base, current in con.execute(
            "SELECT name, kind, owner, base_release, current_release FROM environments"
            " ORDER BY name"
        )
    }
    releases = con.execute(
        "SELECT r.release_id, r.seq, r.collected_at IS NOT NULL, e.asset, e.version_id"
        " FROM releases r LEFT JOIN release_entries e USING (release_id)"
        " ORDER BY r.seq, e.asset"
    ).fetchall()
    count = len({r[0] for r in releases})
    return {
        "environments": environments,
        "releases": _digest([tuple(r) for r in releases]),
        "release_count": count,
    }


def is_empty(state: dict[str, Any]) -> bool:
    """A fresh installation: no releases and only the core environments, pointing at nothing."""
    empty_pointers = _digest([])
    envs = state["environments"]
    return (
        state["release_count"] == 0
        and set(envs) <= set(CORE_ENVIRONMENTS)
        and all(e["pointers"] == empty_pointers and not e["current_release"] for e in envs.values())
    )


def state_changes(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between the state an entry recorded and the state now, one phrase each."""
    changes = []
    before, now = recorded.get("environments", {}), current["environments"]
    for name in sorted(set(before) | set(now)):
        if name not in now:
            changes.append(f"environment {name!r} was removed")
            continue
        if name not in before:
            changes.append(f"environment {name!r} was added")
            continue
        old, new = before[name], now[name]
        if old["current_release"] != new["current_release"]:
            changes.append(
                f"{name}'s current release is {new['current_release']} but the ledger recorded "
                f"{old['current_release']}"
            )
        if old["pointers"] != new["pointers"]:
            changes.append(f"{name}'s pointers were changed")
        if old["record"] != new["record"]:
            changes.append(f"{name}'s record (kind, owner or base release) was changed")
    if recorded.get("releases") != current["releases"]:
        count = current["release_count"] - recorded.get("release_count", 0)
        what = f"{count:+d} releases" if count else "a release manifest was changed"
        changes.append(f"releases differ from what the ledger recorded ({what})")
    return changes
