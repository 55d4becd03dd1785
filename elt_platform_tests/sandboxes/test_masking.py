"""PII masking: well-formed fake values, stable keyed tokens, joins that still work, and no raw
PII value readable through any relation of a sandbox catalog."""

from __future__ import annotations

import re

import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.access.masking import KEY_ENV_VAR, masked_select, masking_key
from elt_platform.access.masking_policy import KEEP, load_masking_policy
from elt_platform.sandboxes.create import create_sandbox

PEOPLE = """
CREATE TABLE people AS SELECT * FROM (VALUES
    (1::BIGINT, 'Mary', 'Smith', 'Mary.Smith1@Example.com', '+1-555-0112-3456', '12 Oak St',
     '12345', DATE '1980-05-06', TIMESTAMP '2020-03-04 10:00:00', 7::INTEGER),
    (2::BIGINT, 'John', NULL, 'john.doe2@example.com', NULL, '9 Elm Ave', '99999',
     DATE '1991-12-31', NULL, NULL)
) t(id, first_name, last_name, email, phone, street_address, postal_code, birth_date, seen_at,
    account_no)
"""
RULES = {
    "first_name": "auto",
    "last_name": "auto",
    "email": "auto",
    "phone": "auto",
    "street_address": "auto",
    "postal_code": "auto",
    "birth_date": "auto",
    "seen_at": "auto",
    "account_no": "auto",
}


@pytest.fixture
def people():
    con = duckdb.connect()
    con.execute(PEOPLE)
    yield con
    con.close()


def _schema(con, sql):
    return tuple((r[0], r[1]) for r in con.execute(f"DESCRIBE {sql}").fetchall())


def test_masked_values_are_fake_well_formed_and_keep_types_and_nulls(people):
    salt = masking_key({}).salt
    sql = masked_select("people", _schema(people, "people"), RULES, salt)
    assert _schema(people, sql) == _schema(people, "people")
    rows = people.execute(f"SELECT * FROM ({sql}) ORDER BY id").fetchall()
    raw = people.execute("SELECT * FROM people ORDER BY id").fetchall()
    first, second = rows
    assert first[0] == 1 and second[0] == 2  # unmarked columns untouched
    assert re.fullmatch(r"[A-Z][a-z]{5}", first[1]) and first[1] != "Mary"
    assert second[2] is None and second[4] is None and second[8] is None  # NULL stays NULL
    assert re.fullmatch(r"user_[0-9a-f]{16}@masked\.invalid", first[3])
    assert re.fullmatch(r"\+1-555-00\d\d-\d{4}", first[4])
    assert re.fullmatch(r"\d{1,4} [A-Z][a-z]{5} Way", first[5])
    assert (first[6], second[6]) == ("123**", "999**")
    assert (str(first[7]), str(second[7])) == ("1980-01-01", "1991-01-01")
    assert str(first[8]) == "2020-01-01 00:00:00"
    assert isinstance(first[9], int) and first[9] != 7
    raw_values = {v for row in raw for v in row[1:7] if v is not None}
    assert not raw_values & {v for row in rows for v in row[1:7]}


def test_tokens_are_stable_across_tables_and_keep_joins_working():
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE TABLE a AS SELECT range AS cid, 'User' || range || '@X.com' AS email"
            " FROM range(1000)"
        )
        con.execute(
            "CREATE TABLE b AS SELECT range % 500 AS cid, lower(' user' || (range % 500)"
            " || '@x.com ') AS email FROM range(3000)"
        )
        salt = masking_key({}).salt
        rules = {"cid": "token", "email": "email"}
        ma = masked_select("a", _schema(con, "a"), rules, salt)
        mb = masked_select("b", _schema(con, "b"), rules, salt)
        raw_join = con.execute("SELECT count(*) FROM a JOIN b USING (cid)").fetchone()[0]
        masked_join = con.execute(f"SELECT count(*) FROM ({ma}) a JOIN ({mb}) b USING (cid)")
        assert masked_join.fetchone()[0] == raw_join == 3000
        # e-mails are normalised (case, spaces) before tokenising: the same address, one token
        by_email = con.execute(f"SELECT count(*) FROM ({ma}) a JOIN ({mb}) b USING (email)")
        assert by_email.fetchone()[0] == 3000
        assert con.execute(f"SELECT count(DISTINCT cid) FROM ({ma})").fetchone()[0] == 1000
    finally:
        con.close()


def test_the_key_decides_the_tokens_and_never_appears_in_sql(people):
    schema = _schema(people, "people")
    one = masking_key({KEY_ENV_VAR: "first-secret"})
    two = masking_key({KEY_ENV_VAR: "second-secret"})
    sql_one = masked_select("people", schema, {"email": "email"}, one.salt)
    sql_two = masked_select("people", schema, {"email": "email"}, two.salt)
    fetch = "SELECT email FROM ({}) ORDER BY id"
    assert people.execute(fetch.format(sql_one)).fetchall() != (
        people.execute(fetch.format(sql_two)).fetchall()
    )
    assert "first-secret" not in sql_one and "first-secret" not in repr(one)
    assert one.salt not in repr(one) and one.key_id != two.key_id


def _raw_pii(settings) -> set[str]:
    """Every PII value of the synthetic data, as text, read from prod (unmasked)."""
    wh = open_warehouse(settings)
    policy = load_masking_policy(wh.meta)
    con = wh.catalogs.connect("prod")
    values: set[str] = set()
    try:
        for asset, columns in policy.items():
            schema, name = asset.split("/") if "/" in asset else ("main", asset)
            for column in [c for c, rule in columns.items() if rule != KEEP]:
                rows = con.execute(
                    f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM {schema}."{name}"'
                    f' WHERE "{column}" IS NOT NULL'
                ).fetchall()
                values |= {r[0] for r in rows}
    finally:
        con.close()
    return values


def test_no_raw_pii_is_readable_through_any_relation_of_a_sandbox(sandbox_home):
    create_sandbox(open_warehouse(sandbox_home), "mask_check")
    wh = open_warehouse(sandbox_home)
    policy = load_masking_policy(wh.meta)
    masked = {c for c, rule in policy["raw/customers"].items() if rule != KEEP}
    assert masked == {
        "first_name",
        "last_name",
        "email",
        "phone",
        "street_address",
        "postal_code",
        "birth_date",
    }
    assert policy["raw/customers"]["region"] == KEEP  # classified below PII: shown
    assert "email" in policy["customers"]
    raw = _raw_pii(sandbox_home)
    assert len(raw) > 1000
    con = wh.catalogs.connect("mask_check")
    try:
        con.execute("CREATE TEMP TABLE raw_pii (v VARCHAR)")
        con.executemany("INSERT INTO raw_pii VALUES (?)", [[v] for v in sorted(raw)])
        relations = con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
            " AND schema_name <> '_elt'"
        ).fetchall()
        assert len(relations) >= 12
        leaks = []
        for schema, view in relations:
            for column, typ, *_ in con.execute(f'DESCRIBE "{schema}"."{view}"').fetchall():
                hits = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{view}" WHERE CAST("{column}" AS VARCHAR)'
                    " IN (SELECT v FROM raw_pii)"
                ).fetchone()[0]
                if hits and typ != "DATE":
                    leaks.append(f"{schema}.{view}.{column}: {hits}")
        assert leaks == []
        # Dates are generalised to the year: only a real 1 January birthday survives as is.
        days = con.execute("SELECT DISTINCT strftime(birth_date, '%m-%d') FROM raw.customers")
        assert days.fetchall() == [("01-01",)]
    finally:
        con.close()


def test_joins_on_masked_keys_give_the_same_row_counts_as_prod(sandbox_home):
    wh = open_warehouse(sandbox_home)
    joins = [
        "SELECT count(*) FROM main.stg_customers s JOIN main.customers c USING (email)",
        "SELECT count(*) FROM raw.customers r JOIN main.customers c"
        " ON lower(trim(r.email)) = c.email",
        "SELECT count(*) FROM main.orders o JOIN main.customers c USING (customer_id)",
    ]
    counts = {}
    for env in ("prod", "mask_check"):
        con = wh.catalogs.connect(env)
        try:
            counts[env] = [con.execute(sql).fetchone()[0] for sql in joins]
        finally:
            con.close()
    assert counts["mask_check"] == counts["prod"]
    assert all(n > 0 for n in counts["prod"])
