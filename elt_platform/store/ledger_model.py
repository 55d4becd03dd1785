"""The ledger's data: entries, their canonical hashing, and what `verify` reports."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    at: str
    kind: str
    actor: str
    environment: str | None
    run_id: str | None
    code_version: str | None
    params: dict[str, Any] = field(default_factory=dict)
    assets: dict[str, str] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""
    state: dict[str, Any] | None = None  # the platform state after the event (see state.py)
    key_id: str | None = None  # which ledger key signed it, when one is configured
    mac: str | None = None  # HMAC-SHA256 of `hash` under that key

    def hashed_fields(self) -> dict[str, Any]:
        """The fields covered by the hash; `seq` is storage order, checked through the chain.
        Entries written before states were recorded hash without one."""
        fields = {
            "at": self.at,
            "kind": self.kind,
            "actor": self.actor,
            "environment": self.environment,
            "run_id": self.run_id,
            "code_version": self.code_version,
            "params": self.params,
            "assets": self.assets,
        }
        if self.state is not None:
            fields["state"] = self.state
        return fields


@dataclass(frozen=True)
class Tampering:
    """One place where the stored ledger, its anchors or the state differ from untouched ones."""

    # edited | deleted | inserted | reordered | truncated | recomputed | forged | unsigned
    # | unanchored | state
    kind: str
    seq: int | None
    message: str


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    head: str
    problems: tuple[Tampering, ...] = ()
    anchors: int = 0
    signed: bool = False  # a ledger key was configured and checked

    @property
    def problem(self) -> Tampering | None:
        return self.problems[0] if self.problems else None

    @property
    def ok(self) -> bool:
        return not self.problems


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(fields: dict[str, Any], prev_hash: str) -> str:
    return hashlib.sha256((canonical_json(fields) + prev_hash).encode()).hexdigest()
