"""Deciding whether a model's SQL change is non-breaking for a reader: only the columns the reader
uses (any use) count, the rest of the query must be identical, and anything undecidable (a `*`
over the model, Jinja beyond ref/source, DISTINCT or GROUP BY, an alias chain through a changed
column) counts as breaking."""

from __future__ import annotations

from elt_platform.project.change_impact import columns_read, unchanged_for
from elt_platform.project.manifest import Manifest

MANIFEST = Manifest(
    {
        "nodes": {
            "model.p.eph": {"resource_type": "model", "name": "eph", "config": {"materialized": "ephemeral"}},
            "model.p.up": {"resource_type": "model", "name": "up", "config": {}},
        }
    }
)  # fmt: skip
OLD = "select o.id, o.qty, o.qty * o.price as amount from {{ ref('stg') }} o where o.ok"
UP = ("main", "up")
SCHEMA = {UP: {"id": "int", "qty": "int", "amount": "int", "note": "text"}}


def test_a_new_column_is_non_breaking_for_readers_of_other_columns():
    new = OLD.replace(" as amount", " as amount, 1 as flag")
    assert unchanged_for(OLD, new, {"id", "amount"}, MANIFEST) == (True, "")


def test_a_changed_column_or_filter_is_breaking_for_its_readers():
    changed = OLD.replace("o.qty * o.price", "o.qty * o.price * 2")
    assert not unchanged_for(OLD, changed, {"id", "amount"}, MANIFEST)[0]
    assert unchanged_for(OLD, changed, {"id", "qty"}, MANIFEST)[0]
    filtered = OLD.replace("where o.ok", "where o.ok and o.qty > 1")
    assert not unchanged_for(OLD, filtered, {"id"}, MANIFEST)[0]


def test_undecidable_shapes_are_breaking():
    added = OLD.replace(" as amount", " as amount, 1 as flag")
    jinja = OLD.replace("where o.ok", "{% if var('x') %}where o.ok{% endif %}")
    assert not unchanged_for(OLD, jinja, {"id"}, MANIFEST)[0]
    distinct = "select distinct id, qty from {{ ref('stg') }}"
    assert not unchanged_for(distinct, distinct.replace("qty", "qty, 1 as f"), {"id"}, MANIFEST)[0]
    ephemeral = OLD.replace("ref('stg')", "ref('eph')")
    assert not unchanged_for(
        ephemeral, added.replace("ref('stg')", "ref('eph')"), {"id"}, MANIFEST
    )[0]
    chained = "select qty * 2 as double, double + 1 as plus from {{ ref('stg') }}"
    assert not unchanged_for(chained, chained.replace("qty * 2", "qty * 3"), {"plus"}, MANIFEST)[0]


def test_columns_read_counts_every_use_and_refuses_a_star_over_the_model():
    sql = (
        'select r.id, sum(u.amount) as total from "main"."up" u join "main"."r" r on r.id = u.id '
        "where u.qty > 0 group by r.id"
    )
    schema = {**SCHEMA, ("main", "r"): {"id": "int"}}
    assert columns_read(sql, UP, schema) == {"id", "amount", "qty"}
    assert columns_read('select * from "main"."up"', UP, SCHEMA) is None
    assert columns_read('select count(*) as n from "main"."up"', UP, SCHEMA) == set()
