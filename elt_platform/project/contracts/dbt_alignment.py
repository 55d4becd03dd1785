"""CI compliance for contracts: every raw table and mart has a parsable, complete contract."""

from __future__ import annotations

import json
from pathlib import Path

from elt_platform.errors import ContractError
from elt_platform.project.contracts.files import load_contract
from elt_platform.project.contracts.model import Contract
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.project.sources import load_sources
from elt_platform.settings import Settings

MART_FOLDER = "marts"


def governed_assets(settings: Settings) -> list[str]:
    """Assets that must have a contract: every raw source and every dbt mart."""
    raw = [f"raw/{s.name}" for s in load_sources(settings.sources_config)]
    manifest = json.loads(prepare_manifest(load_dbt_project(settings)).read_text())
    marts = sorted(
        n["name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and len(n["fqn"]) > 2 and n["fqn"][1] == MART_FOLDER
    )
    return raw + marts


def check_contracts(settings: Settings) -> tuple[dict[str, Contract], list[str]]:
    """Parse every contract and list every compliance problem (empty list = compliant)."""
    problems: list[str] = []
    contracts: dict[str, Contract] = {}
    files: dict[str, Path] = {}
    for path in sorted(Path(settings.contracts_dir).rglob("*.yml")):
        try:
            contract = load_contract(path)
        except ContractError as exc:
            problems.append(str(exc.args[0]))
            continue
        if contract.dataset in contracts:
            other = files[contract.dataset]
            problems.append(f"{path}:1: dataset {contract.dataset} also has {other}")
        contracts[contract.dataset] = contract
        files[contract.dataset] = path
    governed = governed_assets(settings)
    for asset in governed:
        if asset not in contracts:
            problems.append(f"{asset}: no contract (add one under {settings.contracts_dir})")
    for dataset, path in files.items():
        if dataset not in governed:
            problems.append(f"{path}:1: contract for {dataset!r}, which is not a raw table or mart")
    for dataset, contract in contracts.items():
        if not contract.owner:
            problems.append(f"{files[dataset]}: {dataset} has no owner")
        unlabelled = [c.name for c in contract.columns if c.sensitivity is None]
        if unlabelled:
            problems.append(
                f"{files[dataset]}: {dataset}: columns without sensitivity {unlabelled}"
            )
    return contracts, problems
