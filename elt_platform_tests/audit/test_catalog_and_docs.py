"""The queryable catalog (read-only SQL over views in the metadata store) and the docs site."""

from __future__ import annotations

import json
import re

import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.audit.docs import build_docs, page_name
from elt_platform.audit.metadata_catalog import export_to_duckdb, query_catalog
from elt_platform.errors import QueryRefused
from elt_platform_tests.conftest import run_cli
from elt_platform_tests.governance.conftest import copy_installation


@pytest.fixture(scope="module")
def site(platform_home):
    """Building the docs refreshes the catalog first, so both are ready afterwards."""
    return build_docs(platform_home)


def _q(settings, sql):
    return query_catalog(settings.metadata_path, sql).rows


def test_catalog_answers_who_owns_an_asset(platform_home, site):
    assert _q(platform_home, "SELECT owner FROM owners WHERE asset = 'customers'") == [
        ("team:analytics",)
    ]
    owned = _q(platform_home, "SELECT asset FROM owners WHERE owner = 'team:data-platform'")
    assert ("raw/customers",) in owned


def test_catalog_answers_which_prod_release_contains_a_version(platform_home, site):
    release = open_warehouse(platform_home).releases.current()
    version = release.manifest["customers"]
    rows = _q(
        platform_home,
        "SELECT release_id, is_current_prod FROM release_contents"
        f" WHERE asset = 'customers' AND version_id = '{version}'",
    )
    assert (release.release_id, 1) in rows


def test_catalog_answers_which_assets_derive_from_a_pii_column(platform_home, site):
    rows = _q(
        platform_home,
        "SELECT DISTINCT target_asset, target_column FROM column_derivations"
        " WHERE source_asset = 'raw/customers' AND source_column = 'email' ORDER BY 1",
    )
    assert rows == [("customers", "email"), ("stg_customers", "email")]
    flagged = _q(
        platform_home,
        "SELECT column_name FROM asset_columns WHERE asset = 'customers'"
        " AND effective_sensitivity = 'pii'",
    )
    assert ("email",) in flagged and ("lifetime_value",) not in flagged


def test_catalog_holds_runs_check_results_and_the_audit_log(platform_home, site):
    run_id = open_warehouse(platform_home).releases.list()[-1].run_id
    assert _q(platform_home, f"SELECT status FROM runs WHERE run_id = '{run_id}'") == [("SUCCESS",)]
    n_checks = _q(platform_home, f"SELECT count(*) FROM check_results WHERE run_id = '{run_id}'")
    assert n_checks[0][0] > 0
    assert _q(platform_home, "SELECT count(*) FROM audit_log")[0][0] >= 1


def test_catalog_queries_are_read_only(platform_home, site, tmp_path):
    before = _q(platform_home, "SELECT count(*) FROM audit_log")
    for bad in [
        "DELETE FROM ledger",
        "SELECT 1; DROP TABLE ledger",
        "UPDATE assets SET x=1",
        "WITH x AS (SELECT 1) DELETE FROM ledger",
    ]:
        with pytest.raises(QueryRefused):
            query_catalog(platform_home.metadata_path, bad)
    assert _q(platform_home, "SELECT count(*) FROM audit_log") == before
    # A refusal at the CLI is ledgered (access.denied): on a private copy, not the shared one.
    private = copy_installation(platform_home, tmp_path / "home")
    proc = run_cli(private, "catalog", "query", "DELETE FROM releases")
    assert proc.returncode == 2 and proc.stderr.startswith(
        "error: query refused: DELETE is not allowed"
    )
    proc = run_cli(platform_home, "catalog", "query", "SELECT asset, owner FROM assets", check=True)
    assert "team:analytics" in proc.stdout


def test_catalog_exports_to_duckdb(platform_home, site, tmp_path):
    target = export_to_duckdb(platform_home.metadata_path, tmp_path / "catalog.duckdb")
    con = duckdb.connect(str(target), read_only=True)
    try:
        owner = con.execute("SELECT owner FROM owners WHERE asset = 'customers'").fetchone()
    finally:
        con.close()
    assert owner == ("team:analytics",)


def test_docs_site_has_an_index_and_a_page_per_asset(platform_home, site):
    assets = [r[0] for r in _q(platform_home, "SELECT asset FROM assets")]
    index = site.read_text()
    assert assets, "nothing to check"
    for asset in assets:
        assert f"href='{page_name(asset)}'" in index
        assert (site.parent / page_name(asset)).exists()
    page = (site.parent / page_name("customers")).read_text()
    release = open_warehouse(platform_home).releases.current()
    assert "team:analytics" in page
    assert "<span class='pii'>PII</span>" in page  # email
    assert release.release_id in page and release.manifest["customers"] in page
    chart = _embedded(page, "asset-chart-data")  # rows and quality score, Plotly
    traces = {t["name"]: t for t in chart["data"]}
    assert traces["rows @ staging"]["y"], "no rows plotted"
    assert traces["quality_score @ staging"]["y"]
    assert f"href='{page_name('stg_customers')}'" in page  # upstream link


def _embedded(page: str, element_id: str):
    """The JSON a page embeds for its script (chart figures, graph elements)."""
    found = re.search(rf"<script type='application/json' id='{element_id}'>(.*?)</script>", page)
    assert found, f"no {element_id} in the page"
    return json.loads(found.group(1))


def test_asset_pages_show_release_runs_code_parameters_checks_and_sources(platform_home, site):
    page = (site.parent / page_name("daily_revenue")).read_text()
    wh = open_warehouse(platform_home)
    release = wh.releases.current()
    version_id = release.manifest["daily_revenue"]
    ((run_id, code_version),) = _q(
        platform_home,
        "SELECT run_id, code_version FROM versions"
        f" WHERE asset = 'daily_revenue' AND version_id = '{version_id}'",
    )
    assert run_id and f"<code>{run_id}</code>" in page
    assert code_version and code_version in page  # the code that computed the version
    assert re.search(r"\d+/\d+ passed", page)  # the checks of the run that computed it
    assert "source datasets behind prod's version: <code>" in page
    assert "orders" in page.split("source datasets behind prod's version:")[1].split("</p>")[0]


def test_dashboard_plots_real_runs_slas_and_alerts_offline(platform_home, site):
    page = (site.parent / "dashboard.html").read_text()
    assert "<script src='assets/plotly.min.js'></script>" in page
    assert (site.parent / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    assert "src='http" not in page and 'src="http' not in page  # works offline
    figures = _embedded(page, "dashboard-data")
    wh = open_warehouse(platform_home)
    staging = wh.environments.pointers("staging")
    rows = {t["name"]: t for t in figures["chart-rows"]["data"]}
    assert (
        rows["customers @ staging"]["y"][-1]
        == wh.versions.get("customers", staging["customers"]).rows
    )
    for chart in ("chart-bytes", "chart-seconds", "chart-rows_per_second", "chart-quality_score"):
        assert any(t["y"] for t in figures[chart]["data"]), chart
    failures = figures["chart-failure-rate"]["data"]
    assert failures and "customers" in failures[0]["x"]
    assert "Freshness SLAs" in page and "<td>customers</td><td>prod</td><td>24h</td>" in page
    assert "Alert fatigue review" in page


def test_docs_search_index_and_lineage_graph(platform_home, site):
    script = (site.parent / "assets" / "search-index.js").read_text()
    entries = json.loads(script.removeprefix("window.SEARCH_INDEX = ").rstrip(";\n"))
    titles = {e["title"] for e in entries}
    assets = [r[0] for r in _q(platform_home, "SELECT asset FROM assets")]
    assert assets and set(assets) <= titles
    assert "customers.email" in titles
    index = site.read_text()
    assert "id='search'" in index and "assets/search-index.js" in index
    graph = _embedded((site.parent / "lineage.html").read_text(), "graph-data")
    table_edges = {
        (e["data"]["source"], e["data"]["target"]) for e in graph["tables"] if "source" in e["data"]
    }
    assert ("stg_customers", "customers") in table_edges
    column_edges = {
        (e["data"]["source"], e["data"]["target"])
        for e in graph["columns"]
        if "source" in e["data"]
    }
    assert ("stg_customers.email", "customers.email") in column_edges
    assert (site.parent / "assets" / "cytoscape.min.js").exists()
