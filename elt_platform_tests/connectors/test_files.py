"""File connector end to end: real files on disk, loaded inside real Dagster runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from elt_demo.synthetic import SyntheticSpec, generate_frames
from elt_platform_tests.connectors.helpers import Installation, make_installation

CSV_COLUMNS = {
    "product_id": "BIGINT",
    "sku": "VARCHAR",
    "product_name": "VARCHAR",
    "category": "VARCHAR",
    "unit_price": "DOUBLE",
}
FAST_RETRIES = {"max_retries": 1, "delay_seconds": 0.1}


@pytest.fixture(scope="module")
def frames() -> dict[str, pa.Table]:
    return generate_frames(SyntheticSpec(rows=1_000, seed=3))


@pytest.fixture(scope="module")
def inst(tmp_path_factory) -> Installation:
    return make_installation(
        tmp_path_factory.mktemp("files"),
        {
            "orders_in": {
                "connector": "files",
                "path": "orders_in/*.parquet",
                "format": "parquet",
                "primary_key": ["order_id", "updated_at"],
                "retries": FAST_RETRIES,
            },
            "products_in": {
                "connector": "files",
                "path": "products_in/*.csv",
                "format": "csv",
                "columns": CSV_COLUMNS,
                "primary_key": ["product_id"],
                "retries": FAST_RETRIES,
            },
            "events_in": {
                "connector": "files",
                "path": "events_in/*.jsonl",
                "format": "jsonl",
                "columns": {"id": "BIGINT", "kind": "VARCHAR"},
                "primary_key": ["id"],
                "retries": FAST_RETRIES,
            },
        },
    )


def _folder(inst: Installation, name: str) -> Path:
    folder = inst.sources_dir / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _write_csv(table: pa.Table, path: Path) -> None:
    pacsv.write_csv(table, path)


def test_new_parquet_files_are_loaded_once_even_if_renamed_or_touched(inst, frames):
    orders = frames["orders"]
    folder = _folder(inst, "orders_in")
    pq.write_table(orders.slice(0, 400), folder / "a.parquet")
    pq.write_table(orders.slice(400, 300), folder / "b.parquet")
    env = inst.sandbox("files_incremental")

    first = inst.build(env, "orders_in")
    assert first.success, first.error
    v1 = inst.version(env, "orders_in")
    assert v1.rows == 700

    again = inst.build(env, "orders_in")  # nothing new: same content, same version id
    assert again.success, again.error
    assert inst.version(env, "orders_in").version_id == v1.version_id
    assert inst.materialization_metadata(again.run_id)["files_loaded"] == 0

    (folder / "a.parquet").rename(folder / "a-renamed.parquet")
    os.utime(folder / "b.parquet", ns=(1, 1))  # touched: new mtime, same bytes
    moved = inst.build(env, "orders_in")
    assert moved.success, moved.error
    assert inst.version(env, "orders_in").version_id == v1.version_id
    position = inst.materialization_metadata(moved.run_id)["source_position"]
    assert position["files_loaded"] == [] and position["files_renamed_or_copied"] == [
        "orders_in/a-renamed.parquet"
    ]

    pq.write_table(orders.slice(700, 300), folder / "c.parquet")
    third = inst.build(env, "orders_in")
    assert third.success, third.error
    v3 = inst.version(env, "orders_in")
    assert v3.rows == 1_000
    meta = inst.materialization_metadata(third.run_id)
    assert meta["rows_read"] == 300 and meta["rows_added"] == 300 and meta["parts_reused"] == 2
    assert meta["dagster/row_count"] == 1_000 and meta["bytes"] == v3.bytes > 0
    assert meta["duration_seconds"] > 0 and meta["rows_per_second"] > 0
    assert meta["source_position"]["files_loaded"] == ["orders_in/c.parquet"]
    assert meta["source_schema"]["order_id"] == "BIGINT"
    assert [c.name for c in meta["dagster/column_schema"].columns][:2] == [
        "order_id",
        "customer_id",
    ]
    assert inst.query(
        env, "orders_in", "SELECT count(*) - count(DISTINCT (order_id, updated_at)) FROM t"
    ) == [(0,)]
    # unchanged parts are hard links into the earlier version: an increment costs O(new data)
    assert any(p.stat().st_nlink > 1 for p in inst.wh.versions.part_files(v3))

    # loading everything at once into a fresh sandbox gives the same content hash
    fresh = inst.sandbox("files_full")
    full = inst.build(fresh, "orders_in")
    assert full.success, full.error
    assert inst.version(fresh, "orders_in").version_id == v3.version_id


def test_changed_csv_file_is_detected_and_replaces_rows_by_primary_key(inst, frames):
    products = frames["products"].slice(0, 50)
    folder = _folder(inst, "products_in")
    _write_csv(products, folder / "products.csv")
    env = inst.sandbox("files_changed")
    assert inst.build(env, "products_in").success

    prices = pc.if_else(
        pc.equal(products["product_id"], 1),
        pa.scalar(999.5, pa.float64()),
        pc.cast(products["unit_price"], pa.float64()),
    )
    changed = products.set_column(4, "unit_price", prices)
    extra = frames["products"].slice(50, 1)
    _write_csv(pa.concat_tables([changed.cast(extra.schema), extra]), folder / "products.csv")
    outcome = inst.build(env, "products_in")
    assert outcome.success, outcome.error
    meta = inst.materialization_metadata(outcome.run_id)
    assert meta["source_position"]["files_changed"] == ["products_in/products.csv"]
    assert (meta["rows_added"], meta["rows_replaced"], meta["rows_unchanged"]) == (1, 1, 49)
    assert inst.query(env, "products_in", "SELECT count(*), count(DISTINCT product_id) FROM t") == [
        (51, 51)
    ]
    assert inst.query(env, "products_in", "SELECT unit_price FROM t WHERE product_id = 1") == [
        (999.5,)
    ]


def test_a_file_overlapping_loaded_rows_adds_only_the_new_ones(inst):
    folder = _folder(inst, "events_in")
    (folder / "1.jsonl").write_text("".join(f'{{"id": {i}, "kind": "a"}}\n' for i in range(10)))
    env = inst.sandbox("files_overlap")
    assert inst.build(env, "events_in").success
    # a re-delivery: rows 5..9 again (identical) plus 10..14, and id 3 changed, sent twice
    lines = [f'{{"id": {i}, "kind": "a"}}\n' for i in range(5, 15)]
    lines += ['{"id": 3, "kind": "c"}\n', '{"id": 3, "kind": "c"}\n']
    (folder / "2.jsonl").write_text("".join(lines))
    outcome = inst.build(env, "events_in")
    assert outcome.success, outcome.error
    meta = inst.materialization_metadata(outcome.run_id)
    assert (meta["rows_added"], meta["rows_unchanged"], meta["rows_replaced"]) == (5, 5, 1)
    assert meta["rows_superseded"] == 1  # the identical repeat
    assert inst.query(env, "events_in", "SELECT count(*), max(id) FROM t") == [(15, 14)]
    assert inst.query(env, "events_in", "SELECT kind FROM t WHERE id = 3") == [("c",)]


def test_a_csv_with_duplicate_keys_is_refused_naming_the_rows_and_nothing_loads(inst, frames):
    folder = _folder(inst, "products_in")
    products = frames["products"].slice(0, 20)
    clash = products.slice(3, 5).set_column(
        2, "product_name", pa.array([f"other {i}" for i in range(5)])
    )
    _write_csv(pa.concat_tables([products, clash.cast(products.schema)]), folder / "p.csv")
    env = inst.sandbox("files_dup_keys")
    outcome = inst.build(env, "products_in")
    assert not outcome.success
    first = products["product_id"][3].as_py()
    assert (
        f"source 'products_in': duplicate key in batch: product_id={first} has different values "
        "in products_in/p.csv record 4 and products_in/p.csv record 21; 4 more keys conflict"
    ) in outcome.error
    assert inst.version(env, "products_in") is None


def test_a_csv_cut_off_mid_line_is_refused_with_its_position(inst, frames):
    folder = _folder(inst, "products_in")
    _write_csv(frames["products"].slice(0, 10), folder / "p.csv")
    data = (folder / "p.csv").read_bytes()
    (folder / "p.csv").write_bytes(data[:-4])  # cut inside the last row's price
    env = inst.sandbox("files_cut_csv")
    outcome = inst.build(env, "products_in")
    assert not outcome.success
    assert (
        f"source 'products_in': products_in/p.csv, line 11 (byte {len(data) - 4}) ends without "
        "a line ending: the file looks cut off mid-line"
    ) in outcome.error
    assert inst.version(env, "products_in") is None
    (folder / "p.csv").write_bytes(data)  # the complete file loads
    assert inst.build(env, "products_in").success
    assert inst.query(env, "products_in", "SELECT count(*) FROM t") == [(10,)]


def _truncated_parquet(folder: Path, frames) -> str:
    pq.write_table(frames["orders"].slice(0, 50), folder / "bad.parquet")
    data = (folder / "bad.parquet").read_bytes()
    (folder / "bad.parquet").write_bytes(data[: len(data) // 2])
    return "bad.parquet"


def _empty_parquet(folder: Path, frames) -> str:
    (folder / "bad.parquet").write_bytes(b"")
    return "bad.parquet"


def _extra_column_parquet(folder: Path, frames) -> str:
    table = frames["orders"].slice(0, 50)
    pq.write_table(table.append_column("coupon", pa.array(["x"] * 50)), folder / "bad.parquet")
    return "bad.parquet"


def _wrong_encoding_csv(folder: Path, frames) -> str:
    text = (
        "product_id,sku,product_name,category,unit_price\n900,SKU-00900,Caf\xe9 cr\xe8me,home,3.5\n"
    )
    (folder / "bad.csv").write_bytes(text.encode("latin-1"))
    return "bad.csv"


def _wrong_delimiter_csv(folder: Path, frames) -> str:
    (folder / "bad.csv").write_text(
        "product_id;sku;product_name;category;unit_price\n900;SKU-00900;Lamp;home;3.5\n"
    )
    return "bad.csv"


def _missing_column_csv(folder: Path, frames) -> str:
    (folder / "bad.csv").write_text(
        "product_id,sku,product_name,category\n900,SKU-00900,Lamp,home\n"
    )
    return "bad.csv"


def _truncated_csv(folder: Path, frames) -> str:
    (folder / "bad.csv").write_text(
        "product_id,sku,product_name,category,unit_price\n900,SKU-00900,Lamp,home,3.5\n901,SKU-0"
    )
    return "bad.csv"


def _malformed_jsonl(folder: Path, frames) -> str:
    (folder / "bad.jsonl").write_text('{"id": 900, "kind": "a"}\n{"id": 901, "kind": \n')
    return "bad.jsonl"


BAD_FILES = {
    "truncated_parquet": ("orders_in", _truncated_parquet, "bad.parquet"),
    "empty_file": ("orders_in", _empty_parquet, "is empty"),
    "extra_column": ("orders_in", _extra_column_parquet, "extra column(s) coupon"),
    "wrong_encoding": ("products_in", _wrong_encoding_csv, "not utf-8 encoded"),
    "wrong_delimiter": ("products_in", _wrong_delimiter_csv, "is the delimiter ','"),
    "missing_column": ("products_in", _missing_column_csv, "missing column(s) unit_price"),
    "truncated_csv": ("products_in", _truncated_csv, "line 3 (byte 85) ends without a line ending"),
    "malformed_jsonl": ("events_in", _malformed_jsonl, "bad.jsonl"),
}


def _write_good(folder: Path, source: str, frames, n: int) -> int:
    """Write valid file number n (rows n*100 .. n*100+99) and return its row count."""
    if source == "orders_in":
        pq.write_table(frames["orders"].slice(n * 100, 100), folder / f"good-{n}.parquet")
    elif source == "products_in":
        _write_csv(frames["products"].slice(n * 100, 100), folder / f"good-{n}.csv")
    else:
        rows = "".join(f'{{"id": {i}, "kind": "a"}}\n' for i in range(n * 100, n * 100 + 100))
        (folder / f"good-{n}.jsonl").write_text(rows)
    return 100


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_fails_naming_it_changes_nothing_and_loses_nothing(inst, frames, case):
    source, write_bad, expected = BAD_FILES[case]
    folder = _folder(inst, source)
    _write_good(folder, source, frames, 0)
    env = inst.sandbox(f"bad_{case}")
    assert inst.build(env, source).success
    before = inst.wh.environments.pointers(env)

    _write_good(folder, source, frames, 1)  # valid, arriving together with the bad file
    bad_name = write_bad(folder, frames)
    outcome = inst.build(env, source)

    assert not outcome.success
    assert source in outcome.error and bad_name in outcome.error and expected in outcome.error
    assert inst.step_attempts(outcome.run_id) == 1  # bad input is not retried
    assert inst.wh.environments.pointers(env) == before

    (folder / bad_name).unlink()
    fixed = inst.build(env, source)
    assert fixed.success, fixed.error
    assert inst.version(env, source).rows == 200  # the first file and the valid one, once each


def test_rolling_staging_back_rewinds_the_seen_files_with_the_data(inst, frames):
    folder = _folder(inst, "events_in")
    (folder / "1.jsonl").write_text("".join(f'{{"id": {i}, "kind": "a"}}\n' for i in range(10)))
    assert inst.build("staging", "events_in").success
    v1 = inst.version("staging", "events_in")
    (folder / "2.jsonl").write_text("".join(f'{{"id": {i}, "kind": "b"}}\n' for i in range(10, 30)))
    assert inst.build("staging", "events_in").success
    v2 = inst.version("staging", "events_in")

    inst.wh.environments.set_pointers("staging", {"raw/events_in": v1.version_id}, run_id=None)
    replay = inst.build("staging", "events_in")
    assert replay.success, replay.error
    assert inst.materialization_metadata(replay.run_id)["source_position"]["files_loaded"] == [
        "events_in/2.jsonl"
    ]
    assert inst.version("staging", "events_in").version_id == v2.version_id
    assert inst.query("staging", "events_in", "SELECT count(*), count(DISTINCT id) FROM t") == [
        (30, 30)
    ]
