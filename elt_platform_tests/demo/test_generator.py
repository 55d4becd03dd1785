"""Behaviour of the synthetic source data: determinism, integrity and the landing layout."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from elt_demo.synthetic import (
    LandingDirError,
    SyntheticSpec,
    generate_frames,
    raw_views_sql,
    write_landing,
)
from elt_demo.synthetic.generator import (
    ORDER_STATUSES,
    PAYMENT_METHODS,
    REGIONS,
    SCHEMAS,
    STATUS_TRANSITIONS,
)

ROWS = 5_000


@pytest.fixture(scope="module")
def frames() -> dict[str, pa.Table]:
    return generate_frames(SyntheticSpec(rows=ROWS, seed=7))


@pytest.fixture(scope="module")
def db(frames: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, table in frames.items():
        con.register(name, table)
    return con


def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    # fetchall, not fetchone: DuckDB 2.0 blocks register() while a result is left unfinished.
    return con.execute(sql).fetchall()[0][0]


def test_same_spec_gives_identical_tables() -> None:
    a = generate_frames(SyntheticSpec(rows=1_000, seed=3))
    b = generate_frames(SyntheticSpec(rows=1_000, seed=3))
    for name in SCHEMAS:
        assert a[name].equals(b[name], check_metadata=True), name


def test_different_seed_gives_different_data() -> None:
    a = generate_frames(SyntheticSpec(rows=1_000, seed=3))
    b = generate_frames(SyntheticSpec(rows=1_000, seed=4))
    for name in SCHEMAS:
        assert not a[name].equals(b[name]), name


def test_tables_have_the_documented_schemas(frames: dict[str, pa.Table]) -> None:
    assert list(frames) == ["customers", "products", "orders", "payments"]
    for name, schema in SCHEMAS.items():
        assert frames[name].schema.equals(schema), name


def test_row_counts_follow_rows(frames: dict[str, pa.Table]) -> None:
    assert frames["customers"].num_rows == ROWS // 10
    assert frames["products"].num_rows == 200
    distinct_orders = len(pc.unique(frames["orders"]["order_id"]))
    assert distinct_orders == ROWS
    assert ROWS * 1.01 < frames["orders"].num_rows < ROWS * 1.03
    assert generate_frames(SyntheticSpec(rows=100))["customers"].num_rows == 100


def test_every_order_references_an_existing_customer_and_product(db) -> None:
    assert scalar(db, "select count(*) from orders anti join customers using (customer_id)") == 0
    assert scalar(db, "select count(*) from orders anti join products using (product_id)") == 0
    assert scalar(db, "select count(*) from payments anti join orders using (order_id)") == 0


def test_customer_ids_are_skewed_towards_heavy_buyers(db) -> None:
    top_share = scalar(
        db,
        """select sum(n) / (select count(*) from orders) from (
             select count(*) n from orders group by customer_id order by n desc limit 50)""",
    )
    assert top_share > 50 / (ROWS // 10) * 2  # top 10 % of customers: well over 20 % of orders


def test_order_prices_are_the_product_prices(db) -> None:
    mismatches = scalar(
        db,
        "select count(*) from orders o join products p using (product_id) "
        "where o.unit_price <> p.unit_price",
    )
    assert mismatches == 0
    assert scalar(db, "select min(unit_price) > 0 and max(unit_price) <= 2000 from products")
    assert scalar(db, "select min(quantity) = 1 and max(quantity) <= 10 from orders")


def test_late_updates_repeat_orders_with_a_later_update_and_next_status(db) -> None:
    assert scalar(db, "select count(*) - count(distinct (order_id, updated_at)) from orders") == 0
    first = "select * from orders where updated_at = ordered_at"
    later = "select * from orders where updated_at > ordered_at"
    assert scalar(db, f"select count(*) from ({first})") == ROWS
    assert scalar(db, "select count(*) from orders where updated_at < ordered_at") == 0
    pairs = db.execute(
        f"""select f.status, l.status, count(*) from ({first}) f join ({later}) l using (order_id)
            where f.customer_id = l.customer_id and f.product_id = l.product_id
              and f.quantity = l.quantity and f.unit_price = l.unit_price
              and f.ordered_at = l.ordered_at
            group by all"""
    ).fetchall()
    n_updates = scalar(db, f"select count(*) from ({later})")
    assert 0.01 * ROWS < n_updates < 0.03 * ROWS
    assert sum(n for _, _, n in pairs) == n_updates  # every update has its matching first row
    assert {(old, new) for old, new, _ in pairs} <= set(STATUS_TRANSITIONS.items())


def test_statuses_and_methods_come_from_the_documented_sets(db) -> None:
    statuses = {row[0] for row in db.execute("select distinct status from orders").fetchall()}
    assert statuses == set(ORDER_STATUSES)
    methods = {row[0] for row in db.execute("select distinct method from payments").fetchall()}
    assert methods == set(PAYMENT_METHODS)


def test_payments_settle_every_non_cancelled_order_exactly(db) -> None:
    rows = db.execute(
        """with first as (select * from orders where updated_at = ordered_at),
                paid as (select order_id, sum(amount) amount, count(*) n, min(paid_at) paid_at
                         from payments group by order_id)
           select f.status = 'cancelled' as cancelled, count(*) orders,
                  count(p.order_id) paid_orders,
                  count(*) filter (where p.amount = f.quantity * f.unit_price) exact,
                  count(*) filter (where p.n = 2) split,
                  count(*) filter (where p.paid_at < f.ordered_at) paid_early
           from first f left join paid p using (order_id) group by all order by cancelled"""
    ).fetchall()
    (_, n_open, n_paid, n_exact, n_split, n_early), (_, n_cancelled, n_cancelled_paid, *_rest) = (
        rows
    )
    assert n_paid == n_exact == n_open
    assert n_cancelled > 0 and n_cancelled_paid == 0
    assert 0.02 * n_open < n_split < 0.08 * n_open
    assert n_early == 0
    assert scalar(db, "select min(amount) > 0 from payments")
    assert scalar(db, "select max(payment_id) = count(*) from payments")


def test_emails_are_unique_and_well_formed(frames: dict[str, pa.Table]) -> None:
    emails = frames["customers"]["email"].to_pylist()
    assert len(set(emails)) == len(emails)
    pattern = re.compile(r"^[a-z]+\.[a-z]+[0-9]+@[a-z]+(\.[a-z]+)+$")
    assert all(pattern.match(email) for email in emails)


def test_contact_fields_are_well_formed(frames: dict[str, pa.Table]) -> None:
    customers = frames["customers"]
    assert all(re.fullmatch(r"\+1-555-01\d\d-\d{4}", p) for p in customers["phone"].to_pylist())
    assert all(re.fullmatch(r"\d{5}", p) for p in customers["postal_code"].to_pylist())
    assert set(customers["region"].to_pylist()) == set(REGIONS)
    assert len(set(frames["products"]["category"].to_pylist())) == 8
    assert frames["products"]["sku"][0].as_py() == "SKU-00001"


def test_customers_are_adults_under_91_and_sign_up_in_the_window(db) -> None:
    ages = db.execute(
        """select min(date_diff('year', birth_date, signup_at)
                      - (strftime(signup_at, '%m%d') < strftime(birth_date, '%m%d'))::int),
                  max(date_diff('year', birth_date, date '2025-12-31')
                      - ('1231' < strftime(birth_date, '%m%d'))::int)
           from customers"""
    ).fetchone()
    assert ages[0] >= 18 and ages[1] <= 90
    window = db.execute(
        "select min(signup_at), max(signup_at), bool_and(updated_at >= signup_at) from customers"
    ).fetchone()
    assert window[0] >= dt.datetime(2023, 1, 1) and window[1] < dt.datetime(2026, 1, 1)
    assert window[2]
    assert (
        scalar(
            db,
            "select count(*) from orders o join customers c using (customer_id) "
            "where o.ordered_at < c.signup_at",
        )
        == 0
    )


def test_orders_fall_in_2024_and_2025(db) -> None:
    lo, hi = db.execute("select min(ordered_at), max(ordered_at) from orders").fetchone()
    assert lo >= dt.datetime(2024, 1, 1) and hi < dt.datetime(2026, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"rows": 99}, "rows"), ({"seed": -1}, "seed"), ({"rows": 1.5}, "rows")],
)
def test_invalid_spec_raises_value_error_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SyntheticSpec(**kwargs)


# --------------------------------------------------------------------------------------------
# landing files


@pytest.fixture(scope="module")
def small_frames() -> dict[str, pa.Table]:
    return generate_frames(SyntheticSpec(rows=1_000, seed=11))


def test_write_landing_lays_out_chunked_files_and_a_manifest(
    small_frames: dict[str, pa.Table], tmp_path: Path
) -> None:
    out = tmp_path / "landing"
    written = write_landing(small_frames, out, rows_per_file=300)
    rel = {name: [p.relative_to(out).as_posix() for p in paths] for name, paths in written.items()}
    assert rel["orders"] == [
        "orders/orders-00000.parquet",
        "orders/orders-00001.parquet",
        "orders/orders-00002.parquet",
        "orders/orders-00003.parquet",
        "orders/orders-updates-00000.parquet",
    ]
    assert rel["customers"] == ["customers/customers.parquet"]
    assert rel["products"] == ["products/products.csv"]
    assert len(rel["payments"]) == -(-small_frames["payments"].num_rows // 300)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]  # no temp dirs left

    first_rows = [pq.read_metadata(p).num_rows for p in written["orders"][:-1]]
    assert first_rows == [300, 300, 300, 100]
    updates = pq.read_table(written["orders"][-1])
    assert pc.all(pc.greater(updates["updated_at"], updates["ordered_at"])).as_py()
    products = pacsv.read_csv(written["products"][0])
    assert products.column_names == SCHEMAS["products"].names
    assert products.num_rows == 200

    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["spec"] == {"rows": 1_000, "seed": 11}
    assert manifest["tables"]["orders"]["rows"] == small_frames["orders"].num_rows
    listed = sorted(f["path"] for t in manifest["tables"].values() for f in t["files"])
    assert listed == sorted(p for paths in rel.values() for p in paths)


def test_landing_files_read_back_as_the_generated_tables(
    small_frames: dict[str, pa.Table], tmp_path: Path
) -> None:
    write_landing(small_frames, tmp_path / "landing", rows_per_file=400)
    con = duckdb.connect()
    for statement in raw_views_sql(tmp_path / "landing"):
        con.execute(statement)
    assert small_frames, "nothing to check"
    for name, table in small_frames.items():
        con.register(f"expected_{name}", table)
        key = ", ".join(table.column_names)
        assert scalar(con, f"select count(*) from raw.{name}") == table.num_rows
        diff = f"(select {key} from raw.{name} except all select {key} from expected_{name})"
        assert scalar(con, f"select count(*) from {diff}") == 0, name
    types = dict(
        con.execute("select column_name, column_type from (describe raw.products)").fetchall()
    )
    assert types["unit_price"] == "DECIMAL(12,2)" and types["product_id"] == "BIGINT"


def test_write_landing_is_byte_deterministic(
    small_frames: dict[str, pa.Table], tmp_path: Path
) -> None:
    a = write_landing(small_frames, tmp_path / "a", rows_per_file=500)
    b = write_landing(
        generate_frames(SyntheticSpec(rows=1_000, seed=11)), tmp_path / "b", rows_per_file=500
    )
    assert a, "nothing to check"
    for name in a:
        for pa_, pb in zip(a[name], b[name], strict=True):
            assert pa_.read_bytes() == pb.read_bytes(), pa_.name
    assert (tmp_path / "a/_manifest.json").read_bytes() == (
        tmp_path / "b/_manifest.json"
    ).read_bytes()


def test_write_landing_replaces_its_own_output_but_not_foreign_directories(
    small_frames: dict[str, pa.Table], tmp_path: Path
) -> None:
    out = tmp_path / "landing"
    write_landing(small_frames, out, rows_per_file=300)
    write_landing(small_frames, out, rows_per_file=10_000)  # own output: replaced
    assert sorted(p.name for p in (out / "orders").iterdir()) == [
        "orders-00000.parquet",
        "orders-updates-00000.parquet",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]

    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(LandingDirError, match="refusing to overwrite"):
        write_landing(small_frames, foreign)
    assert (foreign / "keep.txt").read_text() == "mine"

    empty = tmp_path / "empty"
    empty.mkdir()
    write_landing(small_frames, empty)
    assert (empty / "_manifest.json").exists()


def test_failed_write_leaves_the_previous_landing_untouched(
    small_frames: dict[str, pa.Table], tmp_path: Path
) -> None:
    out = tmp_path / "landing"
    write_landing(small_frames, out, rows_per_file=300)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    broken = dict(small_frames)
    broken["orders"] = broken["orders"].drop_columns(["updated_at"])  # split on it fails
    with pytest.raises(KeyError):
        write_landing(broken, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]


def test_write_landing_rejects_bad_arguments(
    small_frames: dict[str, pa.Table], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="rows_per_file"):
        write_landing(small_frames, tmp_path / "x", rows_per_file=0)
    with pytest.raises(ValueError, match="payments"):
        write_landing({k: v for k, v in small_frames.items() if k != "payments"}, tmp_path / "x")


def test_power_law_draw_covers_every_customer_id_range() -> None:
    frames = generate_frames(SyntheticSpec(rows=20_000, seed=1))
    ids = frames["orders"]["customer_id"].to_numpy()
    n = frames["customers"].num_rows
    assert ids.min() >= 1 and ids.max() <= n
    # heavy buyers are spread over the id range, not bunched at low ids
    assert abs(np.median(ids) - n / 2) < n * 0.15
