"""Diff correctness on crafted tables with known added, removed and changed rows."""

from __future__ import annotations

import duckdb
import pytest

from elt_platform.access.masking_policy import KEEP, save_masking_policy
from elt_platform.errors import UnknownAsset
from elt_platform.sandboxes.diff_markdown import MAX_EXAMPLES, diff_markdown
from elt_platform.sandboxes.env_diff import diff_sides, resolve_side
from elt_platform.sandboxes.row_diff import diff_relations
from elt_platform.store.warehouse import Warehouse

LEFT = """
SELECT * FROM (VALUES
    (1, 'a', 10.00, 1), (2, 'b', 20.00, 1), (3, 'c', 30.00, 1), (4, 'd', 40.00, 1),
    (5, 'e', 50.00, 1), (6, 'f', 60.00, 1), (7, 'g', 70.00, 1), (8, 'h', 80.00, 1),
    (9, 'i', 90.00, 1), (10, 'j', 100.00, 1)
) t(id, name, amount, qty)
"""
# 2 and 3 removed; 11, 12, 13 added; 5 renamed; 6 re-priced; 7 both; 8 amount set to NULL;
# qty retyped INTEGER -> BIGINT with equal values; a `note` column added.
RIGHT = """
SELECT id, name, amount, CAST(qty AS BIGINT) AS qty, 'n' || id AS note FROM (VALUES
    (1, 'a', 10.00, 1), (4, 'd', 40.00, 1), (5, 'E', 50.00, 1), (6, 'f', 61.00, 1),
    (7, 'G', 71.00, 1), (8, 'h', NULL, 1), (9, 'i', 90.00, 1), (10, 'j', 100.00, 1),
    (11, 'k', 110.00, 1), (12, 'l', 120.00, 1), (13, 'm', 130.00, 1)
) t(id, name, amount, qty)
"""


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def test_key_diff_counts_added_removed_changed_rows_and_columns(con):
    result = diff_relations(con, "t", LEFT, RIGHT, key=["id"])
    assert result.mode == "key"
    assert (result.rows_left, result.rows_right) == (10, 11)
    assert (result.added, result.removed, result.changed) == (3, 2, 4)
    assert result.column_changes == {"name": 2, "amount": 3, "qty": 0}
    assert result.schema.added == [("note", "VARCHAR")]
    assert result.schema.removed == []
    assert result.schema.retyped == [("qty", "INTEGER", "BIGINT")]
    assert [r["id"] for r in result.examples["added"]] == [11, 12, 13]
    assert [r["id"] for r in result.examples["removed"]] == [2, 3]
    changed = {e["key"]["id"]: e["changes"] for e in result.examples["changed"]}
    assert changed == {
        5: {"name": ["e", "E"]},
        6: {"amount": ["60.00", "61.00"]},
        7: {"name": ["g", "G"], "amount": ["70.00", "71.00"]},
    }
    assert not result.identical


def test_identical_content_reports_no_change(con):
    result = diff_relations(con, "t", LEFT, LEFT, key=["id"])
    assert (result.added, result.removed, result.changed) == (0, 0, 0)
    assert result.identical and result.examples == {"added": [], "removed": [], "changed": []}


def test_composite_keys_match_on_every_key_column(con):
    left = "SELECT * FROM (VALUES (1, 'x', 1), (1, 'y', 2), (2, 'x', 3)) t(a, b, v)"
    right = "SELECT * FROM (VALUES (1, 'x', 1), (1, 'y', 9), (2, 'y', 3)) t(a, b, v)"
    result = diff_relations(con, "t", left, right, key=["a", "b"])
    assert (result.added, result.removed, result.changed) == (1, 1, 1)
    assert result.examples["changed"] == [{"key": {"a": 1, "b": "y"}, "changes": {"v": [2, 9]}}]


def test_duplicate_keys_fall_back_to_a_multiset_row_diff(con):
    left = "SELECT * FROM (VALUES (1, 'a'), (1, 'b'), (2, 'c')) t(id, v)"
    right = "SELECT * FROM (VALUES (1, 'a'), (1, 'z'), (2, 'c'), (3, 'd')) t(id, v)"
    result = diff_relations(con, "t", left, right, key=["id"])
    assert result.mode == "rows" and "not unique" in result.notes[0]
    assert (result.added, result.removed, result.changed) == (2, 1, None)
    assert sorted(r["v"] for r in result.examples["added"]) == ["d", "z"]


def test_without_a_key_rows_are_compared_as_multisets(con):
    left = "SELECT * FROM (VALUES ('a'), ('a'), ('b')) t(v)"
    right = "SELECT * FROM (VALUES ('a'), ('b'), ('b'), ('c')) t(v)"
    result = diff_relations(con, "t", left, right, key=None)
    assert result.mode == "rows"
    assert (result.added, result.removed) == (2, 1)


def test_diff_between_a_release_and_a_sandbox_over_stored_versions(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    con = duckdb.connect()
    try:
        left = wh.versions.write_query(con, "things", LEFT, environment="staging")
        right = wh.versions.write_query(con, "things", RIGHT, environment="exp")
        same = wh.versions.write_query(con, "other", "SELECT 1 AS x", environment="staging")
    finally:
        con.close()
    wh.environments.set_pointers(
        "staging", {"things": left.version_id, "other": same.version_id}, run_id=None
    )
    # Every column classified below PII (a sandbox masks what is unclassified).
    columns = ("id", "name", "amount", "qty", "note")
    save_masking_policy(wh.meta, {"things": dict.fromkeys(columns, KEEP), "other": {"x": KEEP}})
    release = wh.publish("staging", triggered_by="test").release
    wh.environments.create_sandbox(
        "exp", base_release=release.release_id, pointers=release.manifest
    )
    wh.environments.set_pointers("exp", {"things": right.version_id}, run_id=None)

    result = diff_sides(
        wh, resolve_side(wh, release.release_id), resolve_side(wh, "exp"), keys={"things": ["id"]}
    )
    by_asset = {t.asset: t for t in result.tables}
    assert result.masked  # a sandbox is involved: both sides are read through masking
    assert by_asset["other"].mode == "identical"
    things = by_asset["things"]
    assert (things.left_version, things.right_version) == (left.version_id, right.version_id)
    assert (things.added, things.removed, things.changed) == (3, 2, 4)
    with pytest.raises(UnknownAsset):
        diff_sides(wh, resolve_side(wh, "prod"), resolve_side(wh, "exp"), keys={}, assets=["nope"])


def test_null_keys_cannot_be_matched_and_fall_back_to_whole_rows(con):
    left = "SELECT * FROM (VALUES (1, 'a'), (NULL, 'b')) t(id, v)"
    right = "SELECT * FROM (VALUES (1, 'a'), (NULL, 'b'), (2, 'c')) t(id, v)"
    result = diff_relations(con, "t", left, right, key=["id"])
    assert result.mode == "rows" and "NULLs" in result.notes[0]
    assert (result.added, result.removed) == (1, 0)


def test_diff_markdown_shows_schema_counts_and_at_most_five_examples_per_kind(con):
    many = (
        "SELECT CAST(range AS INTEGER) AS id, 'x' AS name, 1.00 AS amount, 1 AS qty"
        " FROM range(100, 120)"
    )
    right = f"{RIGHT} UNION ALL SELECT id, name, amount, qty, 'n' FROM ({many})"
    result = diff_relations(con, "t", LEFT, right, key=["id"], examples=MAX_EXAMPLES)
    text = diff_markdown(result, "prod (release r0001)", "ana_exp")
    assert text.startswith("### t: ana_exp vs prod (release r0001)")
    assert "| note | added (VARCHAR) |" in text and "| qty | INTEGER → BIGINT |" in text
    assert "| in prod (release r0001) | 10 |" in text and "| in ana_exp | 31 |" in text
    assert "| added | 23 |" in text and "| removed | 2 |" in text and "| changed | 4 |" in text
    assert "**Examples: added** (5)" in text and "**Examples: removed** (2)" in text
    added = text.split("**Examples: added** (5)")[1].split("**Examples")[0]
    assert sum(line.startswith("| 1") for line in added.splitlines()) == 5  # ids 11.., 100..
    assert "| 7 | name: g → G; amount: 70.00 → 71.00 |" in text
    same = diff_markdown(diff_relations(con, "t", LEFT, LEFT, key=["id"]), "prod", "ana_exp")
    assert same.endswith("Identical to prod.")


def test_examples_are_found_when_the_key_column_changed_type(con):
    right = "SELECT CAST(id AS BIGINT) AS id, name, amount, qty FROM (" + RIGHT + ")"
    result = diff_relations(con, "t", LEFT, right, key=["id"])
    assert ("id", "INTEGER", "BIGINT") in result.schema.retyped
    assert (result.added, result.removed) == (3, 2)
    assert [r["id"] for r in result.examples["added"]] == [11, 12, 13]
    assert [r["id"] for r in result.examples["removed"]] == [2, 3]
    assert result.examples["changed"], "no changed examples"
