"""Contracts: read from the dbt YAML (the one declaration), precise errors naming file and key,
change classification, and the gates they generate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.checks.contract import check_contract
from elt_platform.errors import ContractError
from elt_platform.project.contracts.evolution import (
    breaking_change_approved,
    classify_contract_change,
    classify_schema_change,
    is_widening,
)
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.contracts.model import Contract
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.settings import load_settings
from elt_platform_tests.conftest import cli_env, edit_yaml, run_cli
from elt_platform_tests.sandboxes.conftest import copy_dbt_project


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


def _project_copy(tmp_path: Path, platform_home) -> tuple[Path, object]:
    project = copy_dbt_project(tmp_path / "dbt_project")
    settings = dataclasses.replace(platform_home, dbt_project_dir=project)
    prepare_manifest(load_dbt_project(settings))
    return project, settings


def _model(data: dict, name: str) -> dict:
    return next(m for m in data["models"] if m["name"] == name)


def test_the_demo_contracts_are_read_from_its_dbt_yaml():
    settings = load_settings()
    prepare_manifest(load_dbt_project(settings))
    contracts = contracts_for(settings)
    gated = {a for a, c in contracts.items() if c.gated}
    assert gated == {"raw/customers", "raw/orders", "raw/payments", "raw/products"} | {
        "customers",
        "orders",
        "daily_revenue",
    }
    orders = contracts["raw/orders"]
    assert orders.kind == "source" and orders.owner == "team:data-platform"
    assert orders.primary_key == ["order_id", "updated_at"] and orders.drift_policy == "quarantine"
    assert (orders.retention, orders.retention_column) == ("2555d", "ordered_at")
    quantity = orders.column("quantity")
    assert quantity.type == "integer" and not quantity.nullable  # data_type + not_null test
    assert (quantity.constraints.min, quantity.constraints.max) == (1, 1000)  # meta.constraints
    status = orders.column("status").constraints.allowed_values  # accepted_values test
    assert status == ["placed", "shipped", "delivered", "returned", "cancelled"]
    assert (
        contracts["customers"].enforced
        and contracts["customers"].column("email").constraints.unique
    )
    assert contracts["raw/customers"].column("email").sensitivity == "pii"
    # Models that are not raw tables and whose dbt contract is not enforced are gated by dbt tests.
    assert not contracts["stg_orders"].gated and contracts["stg_orders"].retention == "2555d"


def test_a_contract_gate_follows_its_dbt_yaml(platform_home, tmp_path):
    """Change a constraint in the YAML and the pandera gate of the same version changes."""
    version = open_warehouse(platform_home).resolve("prod")["raw/products"]
    project, settings = _project_copy(tmp_path, platform_home)
    assert check_contract(version, contracts_for(settings)["raw/products"]).passed

    def cap_price(data: dict) -> None:
        products = next(t for t in data["sources"][0]["tables"] if t["name"] == "products")
        price = next(c for c in products["columns"] if c["name"] == "unit_price")
        price["config"]["meta"]["constraints"]["max"] = 1.0

    edit_yaml(project / "models" / "staging" / "_sources.yml", cap_price)
    prepare_manifest(load_dbt_project(settings))
    outcome = check_contract(version, contracts_for(settings)["raw/products"])
    assert not outcome.passed and outcome.failed_rows > 0


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (
            lambda d: _model(d, "orders")["config"]["meta"].update(retention="seven years"),
            "models/marts/_marts.yml: models.orders.meta.retention: 'seven years' is not a duration",
        ),
        (
            lambda d: _model(d, "orders")["columns"][0]["config"]["meta"].update(
                sensitivity="secret"
            ),
            "models/marts/_marts.yml: models.orders.columns.order_id.meta.sensitivity:",
        ),
        (
            lambda d: _model(d, "orders")["config"]["meta"].update(owner="nobody"),
            "models/marts/_marts.yml: models.orders.meta.owner: 'nobody' must be an e-mail",
        ),
    ],
)
def test_a_malformed_declaration_is_one_line_naming_file_and_key(
    platform_home, tmp_path, edit, where
):
    project, settings = _project_copy(tmp_path, platform_home)
    edit_yaml(project / "models" / "marts" / "_marts.yml", edit)
    prepare_manifest(load_dbt_project(settings))
    with pytest.raises(ContractError) as err:
        contracts_for(settings)
    assert str(err.value.args[0]).startswith(where), err.value.args[0]
    proc = run_cli(settings, "contracts", "check")
    assert proc.returncode == 2 and where in proc.stderr.replace("\n", " ")
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1


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


def test_contracts_check_cli_lists_the_gated_datasets(platform_home):
    proc = run_cli(platform_home, "contracts", "check", env=cli_env(platform_home))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "12 datasets declared in the dbt YAML, 7 with a contract gate" in proc.stdout
