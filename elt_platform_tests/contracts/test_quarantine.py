"""Quarantine and drift on a corpus of bad rows: exact accounting, a reason per row."""

from __future__ import annotations

import duckdb
import pytest

from elt_platform.connectors.drift import decide, detect_drift
from elt_platform.connectors.quarantine import split_rows
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.contracts.model import DriftPolicy
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.settings import load_settings


@pytest.fixture(scope="module")
def contracts():
    """The demo project's contracts, read from its dbt YAML."""
    settings = load_settings()
    prepare_manifest(load_dbt_project(settings))
    return contracts_for(settings)


HEADER = "order_id,customer_id,product_id,quantity,unit_price,status,ordered_at,updated_at"
GOOD = "{id},7,3,2,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00"
# (row, expected reason): at least one row of every kind of violation the contract can catch.
BAD_ORDERS = [
    ("abc,7,3,2,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00", "wrong type in order_id"),
    (",7,3,2,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00", "null key in order_id"),
    ("901,7,3,2,19.99,placed,2025-01-02 10:00:00,", "null key in updated_at"),
    ("902,,3,2,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00", "null value in customer_id"),
    ("903,7,3,two,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00", "wrong type in quantity"),
    ("904,7,3,2.5,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00", "wrong type in quantity"),
    (
        "905,7,3,0,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00",
        "quantity below minimum 1.0",
    ),
    (
        "906,7,3,5000,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00",
        "quantity above maximum 1000.0",
    ),
    (
        "907,7,3,2,-1.00,placed,2025-01-02 10:00:00,2025-01-02 10:00:00",
        "unit_price below minimum 0.0",
    ),
    ("908,7,3,2,12;50,placed,2025-01-02 10:00:00,2025-01-02 10:00:00", "wrong type in unit_price"),
    ("909,7,3,2,19.99,lost,2025-01-02 10:00:00,2025-01-02 10:00:00", "status not an allowed value"),
    ("910,7,3,2,19.99,,2025-01-02 10:00:00,2025-01-02 10:00:00", "null value in status"),
    ("911,7,3,2,19.99,placed,yesterday,2025-01-02 10:00:00", "wrong type in ordered_at"),
    (
        "912,7,3,2,19.99,pl\ufffdced,2025-01-02 10:00:00,2025-01-02 10:00:00",
        "bad encoding in status",
    ),
    (
        "913,0,3,2,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00",
        "customer_id below minimum 1.0",
    ),
    ("914,7,3,2,19.99,placed,2025-13-45 99:00:00,2025-01-02 10:00:00", "wrong type in ordered_at"),
    (GOOD.format(id=1), "duplicate key in batch"),  # same key as the first good row
    (
        "915,7,-3,2,19.99,placed,2025-01-02 10:00:00,2025-01-02 10:00:00",
        "product_id below minimum 1.0",
    ),
]


@pytest.fixture
def con(tmp_path):
    csv = tmp_path / "orders.csv"
    good = [GOOD.format(id=i) for i in range(1, 21)]
    csv.write_text("\n".join([HEADER, *good, *(row for row, _ in BAD_ORDERS)]) + "\n")
    connection = duckdb.connect()
    connection.execute(
        f"CREATE TABLE src AS SELECT * FROM read_csv('{csv}', header=true, all_varchar=true)"
    )
    yield connection
    connection.close()


def test_every_kind_of_bad_row_is_quarantined_with_its_reason(con, contracts):
    counts = split_rows(
        con,
        "SELECT * FROM src",
        contracts["raw/orders"],
        position_sql="'orders.csv:' || (row_number() OVER () + 1)",
    )
    assert counts.read == 20 + len(BAD_ORDERS)
    assert counts.loaded == 20 and counts.quarantined == len(BAD_ORDERS)
    assert counts.read == counts.loaded + counts.quarantined
    rejected = con.execute("SELECT reason, source_position, row_json FROM _elt_rejected").fetchall()
    assert [r[0] for r in rejected] == [reason for _, reason in BAD_ORDERS]
    assert len({reason for _, reason in BAD_ORDERS}) >= 15
    assert rejected[0][1] == "orders.csv:22" and '"order_id":"abc"' in rejected[0][2]
    types = dict(con.execute("DESCRIBE _elt_valid").fetchall()[i][:2] for i in range(8))
    assert types["order_id"] == "BIGINT" and types["unit_price"] == "DECIMAL(12,2)"


def test_keys_already_loaded_are_quarantined(con, contracts):
    con.execute(
        "CREATE TABLE loaded AS SELECT 5::BIGINT AS order_id, "
        "TIMESTAMP '2025-01-02 10:00:00' AS updated_at"
    )
    counts = split_rows(
        con,
        "SELECT * FROM src WHERE order_id IN ('4','5','6')",
        contracts["raw/orders"],
        existing_keys_sql="SELECT * FROM loaded",
    )
    assert (counts.loaded, counts.quarantined) == (2, 1)
    assert counts.reasons == {"key order_id, updated_at already loaded": 1}


def test_missing_non_null_column_quarantines_every_row(con, contracts):
    counts = split_rows(con, "SELECT * EXCLUDE (status) FROM src", contracts["raw/orders"])
    assert counts.loaded == 0 and counts.reasons.get("missing column status", 0) >= 20


def test_customer_regexes_catch_malformed_emails_and_postal_codes(contracts):
    con = duckdb.connect()
    con.execute("""CREATE TABLE c AS SELECT * FROM (VALUES
        ('1','A','B','a@example.com','+1-555-0100-1234','1 Road','X','north','12345','1990-01-01','2024-01-01','2024-01-01'),
        ('2','A','B','not-an-email','+1-555-0100-1234','1 Road','X','north','12345','1990-01-01','2024-01-01','2024-01-01'),
        ('3','A','B','c@example.com','+1-555-0100-1234','1 Road','X','north','1234','1990-01-01','2024-01-01','2024-01-01')
    ) t(customer_id, first_name, last_name, email, phone, street_address, city, region,
        postal_code, birth_date, signup_at, updated_at)""")  # noqa: E501
    counts = split_rows(con, "SELECT * FROM c", contracts["raw/customers"])
    assert counts.reasons == {
        "email does not match pattern": 1,
        "postal_code does not match pattern": 1,
    }


@pytest.mark.parametrize(
    ("policy", "seen", "action"),
    [
        (DriftPolicy.FREEZE, {"extra": "VARCHAR"}, "fail"),
        (DriftPolicy.EVOLVE, {"extra": "VARCHAR"}, "accept"),
        (DriftPolicy.EVOLVE, {"quantity": "BIGINT"}, "accept"),  # widened
        (DriftPolicy.EVOLVE, {"quantity": "VARCHAR", "drop": "status"}, "fail"),  # missing column
        (DriftPolicy.QUARANTINE, {"quantity": "VARCHAR"}, "quarantine"),
        (DriftPolicy.FREEZE, {}, "accept"),
    ],
)
def test_drift_policy_decisions(policy, seen, action, contracts):
    contract = contracts["raw/orders"]
    schema = {c.name: c.type.upper() for c in contract.columns}
    drop = seen.pop("drop", None)
    schema.update(seen)
    if drop:
        schema.pop(drop)
    report = detect_drift(contract, schema)
    assert decide(policy, report).action == action
