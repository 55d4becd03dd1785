"""Load contract YAML files with precise errors: file, line and field."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from elt_platform.contracts.model import Contract
from elt_platform.errors import ContractError
from elt_platform.yaml_lines import line_index


def load_contract(path: Path) -> Contract:
    text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ContractError(
            f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc
    if not isinstance(data, dict):
        raise ContractError(f"{path}:1: a contract must be a mapping of fields")
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        lines = line_index(node) if node is not None else {}
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), 1)
        field = ".".join(str(p) for p in loc) or "(document)"
        raise ContractError(f"{path}:{line}: {field}: {first['msg']}") from exc


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
