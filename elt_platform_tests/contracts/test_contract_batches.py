"""The contract gate validates a version batch by batch with the verdict, failed-row count, null
rates and failure sample of one whole-table pandera validation."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from pandera.errors import SchemaErrors

from elt_platform.checks import contract_scan
from elt_platform.checks.contract import check_contract, pandera_schema
from elt_platform.project.contracts.model import Contract
from elt_platform.store.versions import Version
from elt_platform.store.warehouse import Warehouse


def _contract(**extra_constraints) -> Contract:
    def column(name, type_, nullable=True, **constraints):
        return {"name": name, "type": type_, "nullable": nullable, "constraints": constraints}

    return Contract.model_validate(
        {
            "dataset": "raw/things",
            "primary_key": ["id"],
            "columns": [
                column("id", "integer", nullable=False, unique=True, min=1),
                column("status", "varchar", allowed_values=["a", "b"]),
                column("amount", "double", max=100, **extra_constraints),
                column("email", "varchar", unique=True),
            ],
        }
    )


# 22 rows in two Parquet parts (12 + 10, row groups of 3); with 4-row batches each duplicate sits
# in another batch (and part) than its twin: id 3 twice, email 'x@y' twice and two null emails
# (polars counts nulls as duplicates of each other); plus a null id, id 0 (min 1), status 'z'
# and amount 500 (max 100): 10 failing rows, one failure case each.
_ROWS = [
    (1, "a", 1.0, "e1"),
    (2, "b", 2.0, "x@y"),
    (3, "a", None, "e3"),
    (4, None, 4.0, "e4"),
    (5, "a", 5.0, "e5"),
    (6, "z", 6.0, "e6"),
    (7, "b", 7.0, None),
    (8, "a", 8.0, "e8"),
    (9, "a", 9.0, "e9"),
    (None, "b", 10.0, "e10"),
    (11, "a", 11.0, "e11"),
    (0, "a", 12.0, "e12"),
    (13, "b", 13.0, "e13"),
    (14, "a", 14.0, "e14"),
    (15, "a", 15.0, "x@y"),
    (16, "a", 16.0, "e16"),
    (3, "b", 17.0, "e17"),
    (18, "a", 18.0, "e18"),
    (19, "a", 500.0, "e19"),
    (20, None, 20.0, "e20"),
    (21, "a", 21.0, None),
    (22, "b", None, "e22"),
]


def _version(tmp_path: Path, rows=_ROWS, split=12) -> Version:
    wh = Warehouse(tmp_path / "warehouse")
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE TABLE t (id INTEGER, status VARCHAR, amount DOUBLE, email VARCHAR, n INTEGER)"
        )
        con.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)", [(*r, i) for i, r in enumerate(rows)]
        )
        parts = []
        for name, where in (("a", f"n < {split}"), ("b", f"n >= {split}")):
            part = tmp_path / f"{name}.parquet"
            con.execute(
                f"COPY (SELECT * EXCLUDE (n) FROM t WHERE {where} ORDER BY n) TO '{part}'"
                " (FORMAT parquet, ROW_GROUP_SIZE 3)"
            )
            parts.append(part)
        return wh.versions.commit_parts(con, "raw/things", parts, environment="staging")
    finally:
        con.close()


def _whole_table(version: Version, contract: Contract) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The frame and pandera's failure cases of one validation of the whole version."""
    frame = pl.read_parquet(str(version.directory / "*.parquet"))
    with pytest.raises(SchemaErrors) as err:
        pandera_schema(contract).validate(frame, lazy=True)
    return frame, err.value.failure_cases


def test_failures_in_different_batches_give_the_whole_table_result(tmp_path, monkeypatch):
    monkeypatch.setattr(contract_scan, "BATCH_ROWS", 4)
    version = _version(tmp_path)
    assert len(contract_scan.version_files(version)) == 2
    contract = _contract()
    frame, expected = _whole_table(version, contract)

    scan = contract_scan.scan_version(version, pandera_schema(contract))
    outcome = check_contract(version, contract, {"memory_limit": "256MB"})

    assert scan.failure_cases is not None
    assert scan.failure_cases.to_dicts() == expected.to_dicts()
    assert scan.rows == frame.height == 22
    assert scan.null_counts == dict(zip(frame.columns, frame.null_count().row(0), strict=True))
    assert not outcome.passed
    assert outcome.failed_rows == 10
    assert outcome.metadata["failed_checks"] == expected.height == 10
    assert outcome.metadata["max_null_rate"] == round(2 / 22, 6)
    assert outcome.metadata["failure_sample"] == str(expected.head(5).to_dicts())[:1000]


def test_a_duplicate_key_split_across_parts_fails_the_gate(tmp_path, monkeypatch):
    monkeypatch.setattr(contract_scan, "BATCH_ROWS", 2)
    rows = [(i, "a", 1.0, f"e{i}") for i in range(1, 9)] + [(1, "b", 2.0, "e9")]
    version = _version(tmp_path, rows, split=5)
    _, expected = _whole_table(version, _contract())

    outcome = check_contract(version, _contract())

    assert not outcome.passed and outcome.failed_rows == 2
    assert outcome.metadata["failure_sample"] == str(expected.head(5).to_dicts())[:1000]
    assert expected["index"].to_list() == [0, 8]


def test_a_clean_version_in_many_batches_passes_with_its_null_rates(tmp_path, monkeypatch):
    monkeypatch.setattr(contract_scan, "BATCH_ROWS", 3)
    rows = [(i, "a" if i % 2 else None, float(i), f"e{i}") for i in range(1, 15)]
    version = _version(tmp_path, rows, split=6)

    outcome = check_contract(version, _contract())

    assert outcome.passed and outcome.failed_rows == 0
    assert outcome.metadata["rows"] == 14
    assert outcome.metadata["max_null_rate"] == 0.5


def test_a_schema_failure_is_reported_once_and_taints_every_row(tmp_path, monkeypatch):
    """A type mismatch is seen by every batch; the whole table reports it once."""
    monkeypatch.setattr(contract_scan, "BATCH_ROWS", 4)
    version = _version(tmp_path)
    contract = _contract()
    contract.columns[0].type = "bigint"  # the data holds INTEGER
    _, expected = _whole_table(version, contract)

    outcome = check_contract(version, contract)

    assert expected["index"].is_null().sum() == 1
    assert not outcome.passed and outcome.failed_rows == 22
    assert outcome.metadata["failed_checks"] == expected.height
    assert outcome.metadata["failure_sample"] == str(expected.head(5).to_dicts())[:1000]
