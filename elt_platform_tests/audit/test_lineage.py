"""Table, column and version lineage over the real dbt project and a small hand-written one."""

from __future__ import annotations

import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.audit.release_lineage import release_lineage
from elt_platform.errors import UnknownLineageTarget
from elt_platform.launch.runs import load_definitions
from elt_platform.project.column_lineage import ROWS, ColumnRef
from elt_platform.project.lineage import build_graph, load_lineage
from elt_platform_tests.conftest import run_cli


@pytest.fixture(scope="module")
def graph(platform_home):
    return load_lineage(platform_home)


def _sources(graph, asset, column):
    return {str(e.source): e for e in graph.upstream_edges(ColumnRef(asset, column))}


def test_table_lineage_matches_the_dagster_asset_graph(platform_home, graph):
    asset_graph = load_definitions(platform_home).resolve_asset_graph()
    dagster_edges = sorted(
        (parent.to_user_string(), key.to_user_string())
        for key in asset_graph.materializable_asset_keys
        for parent in asset_graph.get(key).parent_keys
    )
    assert graph.table_edges() == dagster_edges


def test_aggregation_through_a_join_traces_lifetime_value_to_raw_order_fields(graph):
    direct = _sources(graph, "customers", "lifetime_value")
    assert set(direct) == {"int_orders_enriched.order_amount", "int_orders_enriched.status"}
    assert direct["int_orders_enriched.order_amount"].kind == "aggregation"
    assert direct["int_orders_enriched.status"].kind == "conditional"  # only picks the rows summed
    assert "SUM(CASE WHEN" in direct["int_orders_enriched.order_amount"].transformation
    upstream = {str(r) for r in graph.upstream_columns(ColumnRef("customers", "lifetime_value"))}
    assert {"raw/orders.quantity", "raw/orders.unit_price", "raw/orders.status"} <= upstream
    assert "raw/customers.email" not in upstream


def test_joined_and_aggregated_paid_amount_comes_from_payments(graph):
    direct = _sources(graph, "int_orders_enriched", "paid_amount")
    assert set(direct) == {"stg_payments.amount"}
    edge = direct["stg_payments.amount"]
    assert edge.kind == "aggregation"
    assert edge.steps[0].startswith("CAST(COALESCE(payments.paid_amount, 0)")
    assert edge.steps[-1] == "SUM(stg_payments.amount) AS paid_amount"


def test_mart_columns_through_a_join_keep_their_source_with_renames_and_casts(graph):
    category = _sources(graph, "orders", "category")
    assert set(category) == {"int_orders_enriched.category"}
    assert category["int_orders_enriched.category"].kind == "identity"
    assert set(_sources(graph, "int_orders_enriched", "category")) == {"stg_products.category"}
    signup = _sources(graph, "customers", "signup_date")
    assert set(signup) == {"stg_customers.signup_at"}
    assert signup["stg_customers.signup_at"].kind == "transformation"  # renamed and cast
    order_date = _sources(graph, "daily_revenue", "order_date")
    assert set(order_date) == {"int_orders_enriched.order_date"}


def test_count_star_depends_on_the_rows_of_its_input(graph):
    direct = _sources(graph, "daily_revenue", "order_count")
    assert set(direct) == {f"int_orders_enriched.{ROWS}"}
    average = _sources(graph, "daily_revenue", "avg_order_value")  # sum(...) / count(*)
    assert set(average) == {"int_orders_enriched.order_amount", f"int_orders_enriched.{ROWS}"}
    assert graph.assets["int_orders_enriched"].primary_key == ("order_id",)


def test_filters_groupings_and_joins_are_dataset_level_edges_of_the_model(graph):
    rows = {(str(e.source), e.kind) for e in graph.row_edges("daily_revenue")}
    assert rows == {
        ("int_orders_enriched.status", "filter"),
        ("int_orders_enriched.order_date", "group_by"),
    }
    joins = {str(e.source) for e in graph.row_edges("int_orders_enriched") if e.kind == "join"}
    assert joins == {
        "stg_orders.product_id",
        "stg_products.product_id",
        "stg_orders.order_id",
        "stg_payments.order_id",
    }
    # A filter decides rows, not values: nothing downstream becomes "derived from" status.
    assert ColumnRef("int_orders_enriched", "status") not in graph.upstream_columns(
        ColumnRef("daily_revenue", "revenue")
    )


def test_indirect_uses_are_told_apart_from_values_on_a_small_query():
    manifest = {
        "sources": {},
        "nodes": {
            f"model.p.{n}": _node("model", n, None, columns={c: {} for c in cols})
            for n, cols in (("t", ("k", "a", "b", "c", "d")), ("u", ("k", "flag")))
        },
    }
    manifest["nodes"]["model.p.m"] = _node("model", "m", None, deps=["model.p.t", "model.p.u"])
    compiled = {
        "model.p.t": "select 1 as k, 1 as a, 1 as b, 1 as c, 1 as d",
        "model.p.u": "select 1 as k, true as flag",
        "model.p.m": (
            "select t.a, sum(t.b) filter (where t.c > 0) as s, "
            "case when t.d > 1 then t.a end as picked, "
            "row_number() over (partition by t.c order by t.d) as rn, count(*) as n "
            "from main.t join main.u on t.k = u.k "
            "where u.flag and t.a in (select k from main.u) group by t.a, t.c, t.d order by t.a"
        ),
    }
    graph = build_graph(manifest, compiled)
    kinds = {
        (str(e.source), str(e.target)): e.kind
        for c in ("a", "s", "picked", "rn", "n")
        for e in graph.upstream_edges(ColumnRef("m", c))
    }
    assert kinds[("t.b", "m.s")] == "aggregation"
    assert kinds[("t.c", "m.s")] == "filter"  # aggregate FILTER (WHERE ...)
    assert kinds[("t.a", "m.picked")] == "transformation"  # the value, through the CASE
    assert kinds[("t.d", "m.picked")] == "conditional"
    assert kinds[("t.c", "m.rn")] == kinds[("t.d", "m.rn")] == "window"
    assert kinds[(f"t.{ROWS}", "m.n")] == "aggregation"
    rows = {(str(e.source), e.kind) for e in graph.row_edges("m")}
    assert {
        ("t.k", "join"),
        ("u.k", "join"),
        ("u.flag", "filter"),
        ("u.k", "filter"),  # the IN (subquery)
        ("t.a", "group_by"),
        ("t.a", "sort"),
    } <= rows


def test_pii_propagates_to_derived_columns_and_raw_columns_map_to_source_fields(graph):
    email = ColumnRef("customers", "email")
    assert graph.effective_sensitivity(email) == "pii"
    assert ColumnRef("raw/customers", "email") in graph.pii_sources(email)
    assert graph.pii_sources(ColumnRef("customers", "lifetime_value")) == []
    field = graph.source_fields[ColumnRef("raw/customers", "email")]
    assert (field.source, field.connector, field.field) == ("customers", "sql", "email")
    downstream = graph.downstream_columns(ColumnRef("raw/customers", "email"))
    assert {str(r) for r in downstream} == {"stg_customers.email", "customers.email"}


def test_release_lineage_names_the_versions_that_fed_each_version(platform_home):
    wh = open_warehouse(platform_home)
    release = wh.releases.current()
    edges = release_lineage(wh, release.release_id)
    into_customers = {e.upstream: e.upstream_version for e in edges if e.asset == "customers"}
    assert into_customers == {
        "stg_customers": release.manifest["stg_customers"],
        "int_orders_enriched": release.manifest["int_orders_enriched"],
    }


def _node(kind, name, sql_cols, *, schema="main", deps=(), columns=None, source_name=None):
    node = {
        "resource_type": kind,
        "name": name,
        "schema": schema,
        "fqn": ["p", "marts", name],
        "depends_on": {"nodes": list(deps)},
        "columns": {c: {"name": c, "meta": m} for c, m in (columns or {}).items()},
    }
    if source_name:
        node["source_name"] = source_name
    return node


def test_rename_star_expansion_and_pii_derived_hash_on_a_small_project():
    manifest = {
        "sources": {
            "source.p.raw.people": _node(
                "source",
                "people",
                None,
                schema="raw",
                source_name="raw",
                columns={"id": {}, "email": {"sensitivity": "pii"}, "city": {}},
            )
        },
        "nodes": {
            "model.p.stg": _node("model", "stg", None, deps=["source.p.raw.people"]),
            "model.p.mart": _node(
                "model",
                "mart",
                None,
                deps=["model.p.stg"],
                columns={"person": {}, "email_hash": {"sensitivity": "internal"}, "n": {}},
            ),
        },
    }
    compiled = {
        "model.p.stg": 'select * from "db"."raw"."people"',
        "model.p.mart": (
            "with s as (select * from db.main.stg) "
            "select s.id as person, md5(s.email) as email_hash, count(*) over () as n from s"
        ),
    }
    graph = build_graph(manifest, compiled)
    assert list(graph.assets["stg"].columns) == ["id", "email", "city"]  # from `select *`
    person = _sources(graph, "mart", "person")
    assert person["stg.id"].kind == "rename"
    assert _sources(graph, "stg", "id")["raw/people.id"].kind == "identity"
    email_hash = ColumnRef("mart", "email_hash")
    assert graph.declared_sensitivity(email_hash) == "internal"
    assert graph.effective_sensitivity(email_hash) == "pii"
    assert graph.pii_sources(email_hash) == [ColumnRef("raw/people", "email")]
    assert graph.effective_sensitivity(ColumnRef("stg", "email")) == "pii"  # undeclared, derived
    with pytest.raises(UnknownLineageTarget):
        graph.resolve("mart.nope")


def test_lineage_cli_prints_upstream_to_the_source_field(platform_home):
    proc = run_cli(platform_home, "lineage", "customers.email", "--upstream", check=True)
    assert "raw/customers.email" in proc.stdout
    assert "source customers (sql:" in proc.stdout
    assert "PII" in proc.stdout
    bad = run_cli(platform_home, "lineage", "customers.nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: asset 'customers' has no column")
