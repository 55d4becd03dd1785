"""Recording a contract change (what a steward "edits"): validate the file, compare it with the
last recorded state of its dataset, and append a `contract.changed` ledger entry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from elt_platform.project.contracts.files import load_contract
from elt_platform.project.policies import Action
from elt_platform.store.ledger import LedgerKind


@dataclass(frozen=True)
class ContractChange:
    dataset: str
    version: str
    sha256: str
    previous_version: str | None
    changes: list[str]
    recorded: bool  # False when the file matches the last recorded state
    ledger_seq: int | None = None


def _columns(contract) -> dict[str, list[str]]:
    return {c.name: [c.type, str(c.sensitivity)] for c in contract.columns}


def _diff(old: dict[str, list[str]], new: dict[str, list[str]]) -> list[str]:
    out = [f"added {c}" for c in new if c not in old]
    out += [f"removed {c}" for c in old if c not in new]
    for c in new:
        if c in old and old[c][0] != new[c][0]:
            out.append(f"{c} type {old[c][0]} -> {new[c][0]}")
        if c in old and old[c][1] != new[c][1]:
            out.append(f"{c} sensitivity {old[c][1]} -> {new[c][1]}")
    return out


def record_contract_change(wh, path: Path) -> ContractChange:
    """Validate `path` and ledger it as the dataset's current contract (stewards only)."""
    wh.authorize(Action.EDIT_CONTRACTS)
    contract = load_contract(path)  # invalid -> ContractError naming file, line and field
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    previous = next(
        (
            e
            for e in reversed(wh.ledger.entries(kind=LedgerKind.CONTRACT_CHANGED))
            if e.params.get("dataset") == contract.dataset
        ),
        None,
    )
    columns = _columns(contract)
    old = previous.params if previous else {}
    if old.get("sha256") == digest:
        return ContractChange(
            contract.dataset, contract.version, digest, old.get("version"), [], False
        )
    changes = _diff(old.get("columns", {}), columns) if previous else ["first recorded version"]
    for key in ("owner", "retention"):
        if previous and old.get(key) != getattr(contract, key):
            changes.append(f"{key} {old.get(key)} -> {getattr(contract, key)}")
    entry = wh.ledger.append(
        LedgerKind.CONTRACT_CHANGED,
        actor=wh.access.identity.actor,
        environment=None,
        params={
            "dataset": contract.dataset,
            "version": contract.version,
            "sha256": digest,
            "previous_version": old.get("version"),
            "owner": contract.owner,
            "retention": contract.retention,
            "columns": columns,
            "changes": changes,
            "file": path.name,
        },
    )
    return ContractChange(
        contract.dataset, contract.version, digest, old.get("version"), changes, True, entry.seq
    )
