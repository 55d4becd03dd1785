"""Load contract YAML files with precise errors: file, line and field."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from elt_platform.configfile import parse_model
from elt_platform.errors import ContractError
from elt_platform.project.contracts.model import Contract


def load_contract(path: Path) -> Contract:
    """One contract file; errors name the file, line and field."""
    return parse_model(path.read_text(), Contract, str(path), ContractError)


def load_contracts(folder: Path) -> dict[str, Contract]:
    """Every `*.yml` under `folder`, keyed by dataset (asset key string)."""
    contracts: dict[str, Contract] = {}
    for path in sorted(folder.rglob("*.yml")):
        contract = load_contract(path)
        if contract.dataset in contracts:
            raise ContractError(f"{path}:1: dataset {contract.dataset!r} has two contracts")
        contracts[contract.dataset] = contract
    return contracts


@lru_cache(maxsize=8)
def cached_contracts(folder: str, stamp: float) -> dict[str, Contract]:
    return load_contracts(Path(folder))


def contracts_for(folder: Path) -> dict[str, Contract]:
    """Contracts of `folder`, re-read only when a file in it changed."""
    if not folder.is_dir():
        return {}
    stamp = max((p.stat().st_mtime for p in folder.rglob("*.yml")), default=0.0)
    return cached_contracts(str(folder), stamp)
