"""The merge into multi-part versions: content ids, reuse of parts, primary-key semantics."""

from __future__ import annotations

import duckdb
import pytest

from elt_platform.connectors.base import SourcePart
from elt_platform.connectors.merge import merge_batch
from elt_platform.errors import SourceDataError
from elt_platform.store.warehouse import Warehouse

ROWS = (
    "SELECT i AS id, (i * 7 % 100)::DECIMAL(12,2) AS amount, TIMESTAMP '2024-01-01'"
    " + to_seconds(i) AS at, CASE WHEN i % 5 = 0 THEN NULL ELSE 'n' || i END AS note"
    " FROM range({lo}, {hi}) t(i)"
)


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "wh")


@pytest.fixture
def con():
    con = duckdb.connect()
    yield con
    con.close()


def _part(con, wh: Warehouse, sql: str, name: str) -> SourcePart:
    path = wh.versions.new_pending_dir() / f"{name}.parquet"
    con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    return SourcePart(path, name)


def _merge(con, wh, previous, parts, key=("id",), full=False):
    return merge_batch(
        con,
        wh.versions,
        "raw/t",
        "t",
        previous,
        parts,
        key,
        full_refresh=full,
        work_dir=wh.versions.new_pending_dir(),
        record={"environment": "staging"},
    )


def test_content_id_is_that_of_one_file_with_the_same_rows_however_split(con, wh):
    single = wh.versions.write_query(
        con, "raw/single", ROWS.format(lo=0, hi=1000), environment="staging"
    )  # noqa: E501
    first, _ = _merge(con, wh, None, [_part(con, wh, ROWS.format(lo=0, hi=600), "a")])
    second, stats = _merge(con, wh, first, [_part(con, wh, ROWS.format(lo=600, hi=1000), "b")])
    assert second.version_id == single.version_id and second.rows == 1000
    assert stats.parts_reused == 1 and stats.rows_added == 400
    reused = {p.name: p.stat().st_ino for p in wh.versions.part_files(first)}
    assert any(reused.get(p.name) == p.stat().st_ino for p in wh.versions.part_files(second))


def _row(id_: int, note: str) -> str:
    return (
        f"SELECT {id_}::BIGINT AS id, 1.00::DECIMAL(12,2) AS amount,"
        f" TIMESTAMP '2030-01-01' AS at, '{note}' AS note"
    )


def test_changed_rows_replace_identical_rows_are_dropped_and_repeats_collapse(con, wh):
    base, _ = _merge(con, wh, None, [_part(con, wh, ROWS.format(lo=0, hi=100), "a")])
    batch = [
        _part(con, wh, ROWS.format(lo=90, hi=110), "b"),  # 90..99 identical, 100..109 new
        _part(con, wh, _row(5, "x"), "c"),  # changes loaded row 5 ...
        _part(con, wh, _row(5, "x"), "d"),  # ... and repeats it identically: one row
    ]
    version, stats = _merge(con, wh, base, batch)
    assert (stats.rows_added, stats.rows_replaced, stats.rows_unchanged) == (10, 1, 10)
    assert stats.rows_superseded == 1
    rows = con.execute(f"SELECT count(*), count(DISTINCT id) FROM {version.scan_sql}").fetchone()
    assert rows == (110, 110)
    assert con.execute(f"SELECT note FROM {version.scan_sql} WHERE id = 5").fetchall() == [("x",)]
    again, _ = _merge(con, wh, version, [_part(con, wh, ROWS.format(lo=100, hi=110), "e")])
    assert again.version_id == version.version_id  # a replayed batch changes nothing


def test_two_different_rows_with_one_key_in_a_batch_are_refused_not_silently_dropped(con, wh):
    base, _ = _merge(con, wh, None, [_part(con, wh, ROWS.format(lo=0, hi=10), "a")])
    clash = f"{_row(5, 'x')} UNION ALL {_row(20, 'n')} UNION ALL {_row(5, 'y')}"
    with pytest.raises(SourceDataError) as raised:
        _merge(con, wh, base, [_part(con, wh, clash, "b.csv")])
    assert raised.value.args[0] == (
        "source 't': duplicate key in batch: id=5 has different values in "
        "b.csv record 1 and b.csv record 3"
    )
    assert "drift_policy is quarantine" in raised.value.hint
    assert [v.version_id for v in wh.versions.list()] == [base.version_id]  # nothing committed


def test_full_refresh_replaces_everything(con, wh):
    base, _ = _merge(con, wh, None, [_part(con, wh, ROWS.format(lo=0, hi=100), "a")])
    version, _ = _merge(con, wh, base, [_part(con, wh, ROWS.format(lo=0, hi=10), "b")], full=True)
    assert version.rows == 10


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT NULL::BIGINT AS id, 1.0::DECIMAL(12,2) AS amount, TIMESTAMP '2024-01-01' AS at, 'x' AS note",
            "b, record 1: primary key (id) is empty",
        ),  # noqa: E501
        (
            "SELECT 1::BIGINT AS id, 1.0::DOUBLE AS amount, TIMESTAMP '2024-01-01' AS at, 'x' AS note",
            "amount is DOUBLE, expected DECIMAL(12,2)",
        ),  # noqa: E501
        (
            "SELECT 1::BIGINT AS id, TIMESTAMP '2024-01-01' AS at, 'x' AS note",
            "missing column(s) amount",
        ),  # noqa: E501
    ],
)
def test_bad_parts_are_refused_naming_the_part_and_nothing_is_committed(con, wh, sql, message):
    base, _ = _merge(con, wh, None, [_part(con, wh, ROWS.format(lo=0, hi=10), "a")])
    with pytest.raises(SourceDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _merge(con, wh, base, [_part(con, wh, sql, "b")])
    assert [v.version_id for v in wh.versions.list("raw/t")] == [base.version_id]
    assert [p.name for p in (wh.versions.versions_dir / "raw__t").iterdir()] == [base.version_id]
