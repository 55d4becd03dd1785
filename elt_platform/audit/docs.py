"""The living documentation: a static HTML site generated from code and history, rebuilt after every
promotion and rollback. An index, one page per asset (owner, objective, contract, columns with
sensitivity, upstream/downstream, the source datasets behind prod's version, release history with
run id, code version, parameters and check results, rows and quality score over time), the
dashboard (`dashboard.py`), the lineage graph and client-side search (`docs_site.py`). Every
page works offline: the JS it needs is written under `assets/`."""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

import dagster as dg

from elt_platform.access.facade import open_warehouse
from elt_platform.audit import docs_site
from elt_platform.audit.dashboard import PLOTLY_JS, dashboard_body, vendor_plotly
from elt_platform.audit.history import refresh
from elt_platform.audit.metadata_catalog import query_catalog
from elt_platform.audit.observability import Observability, Point, collect
from elt_platform.audit.release_lineage import VersionNode, upstream_chain
from elt_platform.environments import PROD
from elt_platform.orchestration.instance import open_instance
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.settings import Settings

STYLE = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
.pii{color:#b00;font-weight:bold}.muted{color:#777}.ok{color:#2a6}.bad{color:#c33}
nav{margin-bottom:1rem}#search-results{list-style:none;padding:0}.chart{min-height:360px}
.graph{height:420px;border:1px solid #ddd}.graph.tall{height:900px}"""


def docs_dir(settings: Settings) -> Path:
    return settings.home / "docs"


def page_name(asset: str) -> str:
    return asset.replace("/", "__") + ".html"


def build_docs(settings: Settings, instance: dg.DagsterInstance | None = None) -> Path:
    """Refresh the catalog and write the site atomically; returns the path of its index.html."""
    instance = instance or open_instance(settings)
    refresh(settings, instance)
    meta = settings.metadata_path
    assets = _rows(meta, "SELECT * FROM assets ORDER BY layer, asset")
    columns = _rows(meta, "SELECT * FROM asset_columns ORDER BY asset, column_name")
    obs = collect(settings, instance, [a["asset"] for a in assets], contracts_for(settings))
    prod = open_warehouse(settings).environments.pointers(PROD)
    target = docs_dir(settings)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    docs_site.write_assets(tmp, docs_site.search_entries(assets, columns, page_name))
    vendor_plotly(tmp / docs_site.ASSETS_DIR)
    for asset in assets:
        sources = _sources(settings, asset["asset"], prod.get(asset["asset"]))
        (tmp / page_name(asset["asset"])).write_text(_asset_page(meta, asset, obs, sources))
    (tmp / "index.html").write_text(_index(assets))
    (tmp / "dashboard.html").write_text(_page("Dashboard", *dashboard_body(obs), plotly=True))
    elements = docs_site.graph_elements(
        assets,
        _rows(meta, "SELECT * FROM lineage_edges"),
        _rows(meta, "SELECT * FROM column_lineage"),
        page_name,
    )
    (tmp / "lineage.html").write_text(_page("Lineage", *docs_site.lineage_body(elements)))
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target / "index.html"


def _sources(settings: Settings, asset: str, version_id: str | None) -> list[str]:
    """The source datasets behind prod's version of `asset` (OpenLineage names)."""
    if version_id is None:
        return []
    found: list[str] = []

    def walk(node: VersionNode) -> None:
        found.extend(f"{s.namespace}/{s.name}" for s in node.sources)
        for child in node.inputs:
            walk(child)

    walk(upstream_chain(open_warehouse(settings), asset, version_id))
    return sorted(set(found))


def _rows(meta: Path, sql: str) -> list[dict]:
    result = query_catalog(meta, sql)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str, script: str = "", *, plotly: bool = False) -> str:
    head = f"<script src='{docs_site.ASSETS_DIR}/{PLOTLY_JS}'></script>" if plotly else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{STYLE}</style>{head}</head><body>{docs_site.NAV}{body}"
        f"{docs_site.SEARCH_SCRIPT}{script}</body></html>\n"
    )


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _index(assets: list[dict]) -> str:
    rows = [
        [
            f"<a href='{page_name(a['asset'])}'>{_e(a['asset'])}</a>",
            _e(a["layer"]),
            _e(a["owner"]),
            _e(a["description"]),
        ]
        for a in assets
    ]
    return _page(
        "Data catalog",
        "<h1>Data catalog</h1>" + _table(["asset", "layer", "owner", "description"], rows),
    )


def _link(asset: str) -> str:
    return f"<a href='{page_name(asset)}'>{_e(asset)}</a>"


def _asset_page(meta: Path, a: dict, obs: Observability, sources: list[str]) -> str:
    key = a["asset"]
    q = key.replace("'", "''")
    columns = _rows(meta, f"SELECT * FROM asset_columns WHERE asset = '{q}'")
    ups = _rows(meta, f"SELECT upstream FROM lineage_edges WHERE downstream = '{q}'")
    downs = _rows(meta, f"SELECT downstream FROM lineage_edges WHERE upstream = '{q}'")
    history = _rows(
        meta,
        "SELECT r.release_id, r.created_at, r.triggered_by, r.version_id, r.is_current_prod,"
        " coalesce(v.code_version, r.code_version) AS code_version, v.run_id, v.params_json"
        " FROM release_contents r LEFT JOIN versions v"
        f" ON v.asset = r.asset AND v.version_id = r.version_id WHERE r.asset = '{q}'"
        " ORDER BY r.seq DESC",
    )
    checks = _rows(
        meta, f"SELECT run_id, check_name, passed FROM check_results WHERE asset = '{q}'"
    )
    col_rows = [
        [
            _e(c["column_name"]),
            _e(c["data_type"]),
            _e(c["sensitivity"]),
            "<span class='pii'>PII</span>"
            if c["effective_sensitivity"] == "pii"
            else _e(c["effective_sensitivity"]),
            _e(c["description"]),
        ]
        for c in columns
    ]
    release_rows = [
        [
            _e(h["release_id"]) + (" <b>prod</b>" if h["is_current_prod"] else ""),
            _e(h["created_at"]),
            f"<code>{_e(h['version_id'])}</code>",
            f"<code>{_e(h['run_id'] or '-')}</code>",
            _e(h["code_version"] or "-"),
            f"<code>{_e(h['params_json'] or '{}')}</code>",
            _check_summary([c for c in checks if c["run_id"] and c["run_id"] == h["run_id"]]),
            _e(h["triggered_by"]),
        ]
        for h in history
    ]
    body = (
        f"<h1>{_e(key)}</h1>"
        f"<p>{_e(a['description'])}</p>"
        f"<p><b>owner</b> {_e(a['owner'])} &middot; <b>layer</b> {_e(a['layer'])} &middot; "
        f"<b>objective</b> {_e(a['objective'] or '-')} &middot; <b>retention</b> "
        f"{_e(a['retention'] or '-')} &middot; <b>contract</b> {_e(a['contract_version'] or '-')}"
        f"</p><h2>Columns</h2>"
        + _table(["column", "type", "declared", "effective", "description"], col_rows)
        + "<h2>Lineage</h2><p>upstream: "
        + (", ".join(_link(u["upstream"]) for u in ups) or "<span class='muted'>none</span>")
        + "</p><p>downstream: "
        + (", ".join(_link(d["downstream"]) for d in downs) or "<span class='muted'>none</span>")
        + "</p><p>source datasets behind prod's version: "
        + (", ".join(f"<code>{_e(s)}</code>" for s in sources) or "<span class='muted'>none</span>")
        + "</p><h2>Release history</h2>"
        + (
            _table(
                [
                    "release",
                    "created",
                    "version",
                    "run",
                    "code version",
                    "parameters",
                    "checks",
                    "triggered by",
                ],
                release_rows,
            )
            if release_rows
            else "<p class='muted'>never released</p>"
        )
        + "<h2>Rows and quality score over time</h2>"
        + "<div class='chart' id='chart-asset'></div>"
    )
    return _page(key, body, _asset_chart([p for p in obs.points if p.asset == key]), plotly=True)


def _check_summary(checks: list[dict]) -> str:
    if not checks:
        return "<span class='muted'>-</span>"
    failed = sorted({c["check_name"] for c in checks if not c["passed"]})
    passed = sum(1 for c in checks if c["passed"])
    text = f"{passed}/{len(checks)} passed"
    return _e(text) + (
        f" <span class='bad'>failed: {_e(', '.join(failed))}</span>" if failed else ""
    )


def _asset_chart(points: list[Point]) -> str:
    """Plotly: rows (left axis) and quality score (right axis) per environment."""
    traces = []
    for env in sorted({p.environment for p in points}):
        mine = [p for p in points if p.environment == env]
        for metric, axis in (("rows", "y"), ("quality_score", "y2")):
            shown = [p for p in mine if getattr(p, metric) is not None]
            if shown:
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "name": f"{metric} @ {env}",
                        "x": [p.at for p in shown],
                        "y": [getattr(p, metric) for p in shown],
                        "yaxis": axis,
                    }
                )
    layout = {
        "height": 320,
        "margin": {"l": 60, "r": 60, "t": 20, "b": 40},
        "yaxis": {"title": {"text": "rows"}},
        "yaxis2": {"title": {"text": "quality score"}, "overlaying": "y", "side": "right"},
    }
    figure = json.dumps({"data": traces, "layout": layout}).replace("</", "<\\/")
    return (
        f"<script type='application/json' id='asset-chart-data'>{figure}</script><script>"
        "const fig = JSON.parse(document.getElementById('asset-chart-data').textContent);"
        "Plotly.newPlot('chart-asset', fig.data, fig.layout, {displayModeBar: false});</script>"
    )
