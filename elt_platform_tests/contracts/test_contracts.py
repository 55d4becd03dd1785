"""Contracts: precise load errors, change classification, dbt agreement, CI compliance."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml

from elt_platform.errors import ContractError
from elt_platform.project.contracts.dbt_alignment import check_contracts
from elt_platform.project.contracts.evolution import (
    breaking_change_approved,
    classify_contract_change,
    classify_schema_change,
    is_widening,
)
from elt_platform.project.contracts.files import load_contract, load_contracts
from elt_platform.project.contracts.model import Contract
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.settings import REPO_ROOT, load_settings

CONTRACTS = REPO_ROOT / "contracts"


def _base() -> dict:
    return {
        "dataset": "raw/things",
        "version": "1.0.0",
        "owner": "team:data",
        "description": "d",
        "objective": "o",
        "primary_key": ["id"],
        "retention": "30d",
        "freshness": {"max_lag": "24h"},
        "columns": [
            {
                "name": "id",
                "type": "integer",
                "nullable": False,
                "description": "k",
                "sensitivity": "internal",
                "constraints": {"unique": True, "min": 1},
            },
            {
                "name": "status",
                "type": "varchar",
                "nullable": True,
                "description": "s",
                "sensitivity": "public",
                "constraints": {"allowed_values": ["a", "b"]},
            },
            {
                "name": "amount",
                "type": "decimal(12,2)",
                "nullable": True,
                "description": "a",
                "sensitivity": "confidential",
                "constraints": {"max": 100},
            },
            {
                "name": "email",
                "type": "varchar",
                "nullable": True,
                "description": "e",
                "sensitivity": "pii",
                "constraints": {},
            },
        ],
    }


def _with(**changes) -> Contract:
    data = _base()
    for path, value in changes.items():
        target = data
        *parents, leaf = path.split("__")
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        target[int(leaf) if leaf.isdigit() else leaf] = value
    return Contract.model_validate(data)


def _kinds(old: Contract, new: Contract) -> dict[str, bool]:
    return {c.kind: c.breaking for c in classify_contract_change(old, new)}


def test_repository_contracts_load():
    contracts = load_contracts(CONTRACTS)
    assert {"raw/orders", "raw/customers", "orders", "customers", "daily_revenue"} <= set(contracts)


def test_load_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.yml"
    text = (CONTRACTS / "raw" / "orders.yml").read_text()
    bad.write_text(text.replace("owner: team:data-platform", "owner: not an owner"))
    with pytest.raises(ContractError) as err:
        load_contract(bad)
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if t.startswith("owner"))
    assert f"{bad}:{line}: owner:" in str(err.value)

    bad.write_text(text.replace("type: integer", "type: integr"))
    with pytest.raises(ContractError, match=r"bad.yml:\d+: columns\.3\.type: .*unknown type"):
        load_contract(bad)
    bad.write_text("dataset: [unclosed\n")
    with pytest.raises(ContractError, match="not valid YAML"):
        load_contract(bad)


@pytest.mark.parametrize(
    ("changes", "kind", "breaking"),
    [
        (
            {
                "columns": _base()["columns"]
                + [
                    {
                        "name": "note",
                        "type": "varchar",
                        "nullable": True,
                        "description": "n",
                        "sensitivity": "public",
                    }
                ]
            },
            "added",
            False,
        ),
        (
            {
                "columns": _base()["columns"]
                + [
                    {
                        "name": "note",
                        "type": "varchar",
                        "nullable": False,
                        "description": "n",
                        "sensitivity": "public",
                    }
                ]
            },
            "added",
            True,
        ),
        ({"columns": _base()["columns"][:3]}, "removed", True),
        ({"columns__3__name": "mail"}, "renamed", True),
        ({"columns__0__type": "bigint"}, "widened type", False),
        ({"columns__2__type": "decimal(18,4)"}, "widened type", False),
        ({"columns__2__type": "decimal(10,2)"}, "narrowed type", True),
        ({"columns__0__type": "smallint"}, "narrowed type", True),
        ({"columns__1__nullable": False}, "nullable -> not null", True),
        ({"columns__0__nullable": True}, "not null -> nullable", False),
        (
            {"columns__1__constraints": {"allowed_values": ["a", "b", "c"]}},
            "allowed value added",
            False,
        ),
        ({"columns__1__constraints": {"allowed_values": ["a"]}}, "allowed value removed", True),
        ({"columns__2__constraints": {"max": 1000}}, "max relaxed", False),
        ({"columns__2__constraints": {"max": 10}}, "max tightened", True),
        ({"columns__0__constraints": {"unique": False, "min": 1}}, "unique removed", False),
        ({"columns__3__constraints": {"regex": "^.+@.+$"}}, "regex changed", True),
        ({"primary_key": ["id", "status"]}, "primary key changed", True),
    ],
)
def test_every_change_class_is_classified(changes, kind, breaking):
    assert _kinds(_with(), _with(**changes)).get(kind) is breaking


def test_identical_contracts_have_no_changes():
    assert classify_contract_change(_with(), _with()) == []


def test_breaking_change_needs_major_bump_and_migration_note():
    old, new = _with(), _with(columns=_base()["columns"][:3])
    assert not breaking_change_approved(old, new)
    assert not breaking_change_approved(old, _with(columns=_base()["columns"][:3], version="2.0.0"))
    bumped = _with(columns=_base()["columns"][:3], version="2.0.0", migration_note="email moved")
    assert breaking_change_approved(old, bumped)


def test_produced_schema_changes_are_classified():
    changes = classify_schema_change(
        "t", {"a": "INTEGER", "b": "VARCHAR"}, {"a": "BIGINT", "c": "DATE"}
    )
    assert {(c.column, c.kind, c.breaking) for c in changes} == {
        ("b", "removed", True),
        ("c", "added", False),
        ("a", "widened type", False),
    }
    assert is_widening("date", "timestamp") and not is_widening("timestamp", "date")


def test_each_dbt_mart_model_contract_agrees_with_its_data_contract():
    settings = load_settings()
    manifest = json.loads(prepare_manifest(load_dbt_project(settings)).read_text())
    contracts = load_contracts(CONTRACTS)
    marts = [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["fqn"][1] == "marts"
    ]
    assert marts
    assert marts, "nothing to check"
    for node in marts:
        assert node["config"]["contract"]["enforced"], node["name"]
        data = contracts[node["name"]]
        dbt_cols = {n: c["data_type"].replace(" ", "").lower() for n, c in node["columns"].items()}
        assert dbt_cols == {c.name: c.type for c in data.columns}, node["name"]


def test_compliance_passes_on_the_repository():
    contracts, problems = check_contracts(load_settings())
    assert problems == [] and len(contracts) == 7


def test_compliance_fails_for_missing_owner_and_missing_contract(tmp_path):
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, folder)
    orders = folder / "marts" / "orders.yml"
    data = yaml.safe_load(orders.read_text())
    del data["owner"]
    orders.write_text(yaml.safe_dump(data))
    (folder / "raw" / "payments.yml").unlink()
    settings = dataclasses.replace(load_settings(), contracts_dir=folder)
    _, problems = check_contracts(settings)
    assert any("orders.yml" in p and "owner" in p for p in problems)
    assert any(p.startswith("raw/payments: no contract") for p in problems)


def test_contracts_check_cli_exit_codes(tmp_path):
    import os
    import subprocess
    import sys

    ok = subprocess.run(
        [sys.executable, "-m", "elt_platform", "contracts", "check"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    folder = tmp_path / "c"
    shutil.copytree(CONTRACTS, folder)
    (folder / "marts" / "daily_revenue.yml").unlink()
    env = {**os.environ, "ELT_CONTRACTS_DIR": str(folder)}
    bad = subprocess.run(
        [sys.executable, "-m", "elt_platform", "contracts", "check"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1 and "daily_revenue: no contract" in bad.stdout
    assert Path(folder).exists()
