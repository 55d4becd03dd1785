"""What `Ledger.verify` checks beyond storage: the hash chain (and how it broke), the entries'
signatures, the anchors written outside the metadata store, and the state the last entry
committed to. Each check returns the problems it found, worded for the person who must act."""

from __future__ import annotations

import hmac
import sqlite3
from pathlib import Path
from typing import Any

from elt_platform.store.anchor import Anchor, key_id, sign
from elt_platform.store.ledger_model import GENESIS, LedgerEntry, Tampering, entry_hash
from elt_platform.store.releases import manifest_hash
from elt_platform.store.state import is_empty, state_changes

RELEASE_KINDS = ("release.published", "release.rolled_back")
RETENTION_KIND = "retention.deleted"


def find_tampering(entries: list[LedgerEntry]) -> Tampering | None:
    """Walk the chain in storage order and classify the first inconsistency."""
    position = {e.hash: i for i, e in enumerate(entries)}
    prev, prev_seq = GENESIS, 0
    for i, e in enumerate(entries):
        if e.prev_hash != prev:
            return _classify_break(entries, i, prev, prev_seq, position.get(e.prev_hash))
        if entry_hash(e.hashed_fields(), e.prev_hash) != e.hash:
            return Tampering("edited", e.seq, f"entry {e.seq} was edited (its hash does not match)")
        prev, prev_seq = e.hash, e.seq
    return None


def _classify_break(
    entries: list[LedgerEntry], i: int, prev: str, prev_seq: int, linked_at: int | None
) -> Tampering:
    """Entry `i` does not link to the entry stored before it: find out why."""
    e = entries[i]
    following = entries[i + 1] if i + 1 < len(entries) else None
    if linked_at is not None and linked_at > i:
        return Tampering(
            "reordered",
            e.seq,
            f"entry {e.seq} was reordered (it follows entry {entries[linked_at].seq} in the chain)",
        )
    if linked_at is not None and linked_at < i - 1:
        forged = entries[linked_at + 1]
        return Tampering(
            "inserted",
            forged.seq,
            f"entry {forged.seq} was inserted (entry {e.seq} follows "
            f"entry {entries[linked_at].seq} in the chain)",
        )
    if following is not None and following.prev_hash == prev:
        return Tampering(
            "inserted",
            e.seq,
            f"entry {e.seq} was inserted (entry {following.seq} follows "
            f"entry {prev_seq} in the chain)",
        )
    if entry_hash(e.hashed_fields(), e.prev_hash) != e.hash:
        return Tampering("edited", e.seq, f"entry {e.seq} was edited (its hash does not match)")
    if e.seq == prev_seq + 1 and i > 0:
        return Tampering(
            "edited",
            prev_seq,
            f"entry {prev_seq} was edited (its hash was recomputed; "
            f"entry {e.seq} no longer links to it)",
        )
    gone = f"entry {prev_seq + 1} was" if e.seq == prev_seq + 2 else f"entries before {e.seq} were"
    return Tampering(
        "deleted", prev_seq + 1, f"{gone} deleted (entry {e.seq} does not link to entry {prev_seq})"
    )


def signature_problems(entries: list[LedgerEntry], key: bytes) -> list[Tampering]:
    """Every entry after the first signed one must carry a valid signature under `key`."""
    problems: list[Tampering] = []
    expected_id = key_id(key)
    signing = False
    for e in entries:
        if e.mac is None:
            if signing:
                problems.append(
                    Tampering(
                        "unsigned",
                        e.seq,
                        f"entry {e.seq} is not signed: it was appended without the ledger key",
                    )
                )
            continue
        signing = True
        if e.key_id != expected_id or not hmac.compare_digest(e.mac, sign(key, e.hash)):
            problems.append(
                Tampering(
                    "forged",
                    e.seq,
                    f"entry {e.seq}'s signature does not match the ledger key "
                    f"(key id {e.key_id}): it was forged or edited without the key",
                )
            )
    first: dict[str, Tampering] = {}
    for problem in problems:  # the first unsigned and the first forged entry say enough
        first.setdefault(problem.kind, problem)
    return list(first.values())


def anchor_problems_for(
    entries: list[LedgerEntry], anchors: list[Anchor], unreadable: list[str], path: Path
) -> list[Tampering]:
    """Anchored heads must still be in the chain, unchanged; every prod move must be anchored."""
    problems = [Tampering("forged", None, text) for text in unreadable]
    by_seq = {e.seq: e for e in entries}
    last = entries[-1].seq if entries else 0
    beyond = [a for a in anchors if a.seq > last]
    if beyond:
        top = max(beyond, key=lambda a: a.seq)
        problems.append(
            Tampering(
                "truncated",
                last + 1,
                f"the ledger ends at entry {last} but entry {top.seq} was anchored at "
                f"{top.at[:19]} ({path}): entries were deleted",
            )
        )
    changed = sorted(
        (a for a in anchors if a.seq in by_seq and by_seq[a.seq].hash != a.hash),
        key=lambda a: a.seq,
    )
    if changed:
        a = changed[0]
        problems.append(
            Tampering(
                "recomputed",
                a.seq,
                f"entry {a.seq} differs from its anchor written at {a.at[:19]}: "
                "the chain was edited and its hashes recomputed",
            )
        )
    anchored_up_to = max((a.seq for a in anchors), default=0)
    # Entries from before anchoring existed (no recorded state) were never anchored.
    unanchored = [
        e
        for e in entries
        if e.kind in RELEASE_KINDS and e.seq > anchored_up_to and e.state is not None
    ]
    if unanchored:
        e = unanchored[0]
        problems.append(
            Tampering(
                "unanchored",
                e.seq,
                f"entry {e.seq} ({e.kind}) was never anchored: {path} is missing or was cut",
            )
        )
    return problems


def release_manifest_hashes(con: sqlite3.Connection) -> dict[str, str]:
    """release id -> hash of its manifest as the metadata store holds it now."""
    manifests: dict[str, dict[str, str]] = {
        r[0]: {} for r in con.execute("SELECT release_id FROM releases")
    }
    for release_id, asset, version_id in con.execute(
        "SELECT release_id, asset, version_id FROM release_entries"
    ):
        manifests.setdefault(release_id, {})[asset] = version_id
    return {rid: manifest_hash(m) for rid, m in manifests.items()}


def state_problems(
    entries: list[LedgerEntry], state: dict[str, Any], manifests: dict[str, str]
) -> list[Tampering]:
    """The state now must be the state the last entry committed to, and every release manifest
    the one its publishing (or retention) entry recorded."""
    problems: list[Tampering] = []
    if not entries:
        if not is_empty(state):
            problems.append(
                Tampering(
                    "deleted",
                    None,
                    f"the ledger is empty but the metadata store holds {state['release_count']} "
                    "releases and environment pointers: its entries were deleted",
                )
            )
        return problems
    last = entries[-1]
    if last.state is not None:
        changes = state_changes(last.state, state)
        if changes:
            problems.append(
                Tampering(
                    "state",
                    last.seq,
                    f"the state changed outside the platform since entry {last.seq}: "
                    + "; ".join(changes),
                )
            )
    recorded: dict[str, tuple[str, int]] = {}
    for e in entries:
        if e.kind in RELEASE_KINDS and e.params.get("manifest_hash"):
            recorded[e.params["release_id"]] = (e.params["manifest_hash"], e.seq)
        elif e.kind == RETENTION_KIND:
            for rid, digest in (e.params.get("release_manifests") or {}).items():
                recorded[rid] = (digest, e.seq)
    for rid, (digest, seq) in sorted(recorded.items(), key=lambda kv: kv[1][1]):
        if rid not in manifests:
            problems.append(
                Tampering("state", seq, f"release {rid} (entry {seq}) is missing from the store")
            )
        elif manifests[rid] != digest:
            problems.append(
                Tampering(
                    "state",
                    seq,
                    f"release {rid}'s manifest differs from the one entry {seq} recorded",
                )
            )
    return problems
