"""Recording a contract change (what a steward approves): take a dataset's declaration as the dbt
YAML states it now, compare it with the last recorded state, and append a `contract.changed`
ledger entry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from elt_platform.errors import UnknownAsset
from elt_platform.project.contracts.from_dbt import contracts_for
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


def record_contract_change(wh, dataset: str) -> ContractChange:
    """Ledger `dataset`'s declaration as its current contract (stewards only)."""
    wh.authorize(Action.EDIT_CONTRACTS)
    contracts = contracts_for(wh.settings)  # invalid meta -> ContractError naming file and key
    if dataset not in contracts:
        raise UnknownAsset(f"the project declares no dataset {dataset!r}")
    contract = contracts[dataset]
    canonical = json.dumps(contract.model_dump(mode="json"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
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
        },
    )
    return ContractChange(
        contract.dataset, contract.version, digest, old.get("version"), changes, True, entry.seq
    )
