"""The living documentation: a static HTML site generated from code and history, one page per asset
(owner, objective, contract, columns with sensitivity, upstream/downstream, release history,
quality score over time as an inline SVG chart) and an index. Rebuilt after every promotion."""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

import dagster as dg

from elt_platform.audit.history import refresh
from elt_platform.audit.metadata_catalog import query_catalog
from elt_platform.settings import Settings

STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
.pii{color:#b00;font-weight:bold}.muted{color:#777}"""


def docs_dir(settings: Settings) -> Path:
    return settings.home / "docs"


def page_name(asset: str) -> str:
    return asset.replace("/", "__") + ".html"


def build_docs(settings: Settings, instance: dg.DagsterInstance | None = None) -> Path:
    """Refresh the catalog and write the site atomically; returns the path of its index.html."""
    refresh(settings, instance)
    meta = settings.metadata_path
    assets = _rows(meta, "SELECT * FROM assets ORDER BY layer, asset")
    target = docs_dir(settings)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for asset in assets:
        (tmp / page_name(asset["asset"])).write_text(_asset_page(meta, asset))
    (tmp / "index.html").write_text(_index(assets))
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target / "index.html"


def _rows(meta: Path, sql: str) -> list[dict]:
    result = query_catalog(meta, sql)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
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


def _asset_page(meta: Path, a: dict) -> str:
    key = a["asset"]
    q = key.replace("'", "''")
    columns = _rows(meta, f"SELECT * FROM asset_columns WHERE asset = '{q}'")
    ups = _rows(meta, f"SELECT upstream FROM lineage_edges WHERE downstream = '{q}'")
    downs = _rows(meta, f"SELECT downstream FROM lineage_edges WHERE upstream = '{q}'")
    history = _rows(
        meta,
        f"SELECT release_id, created_at, version_id, is_current_prod FROM release_contents"
        f" WHERE asset = '{q}' ORDER BY seq DESC",
    )
    scores = _rows(
        meta, f"SELECT at, score, checks FROM quality_scores WHERE asset = '{q}' ORDER BY at"
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
            _e(h["release_id"]),
            _e(h["created_at"]),
            _e(h["version_id"]),
            "prod" if h["is_current_prod"] else "",
        ]
        for h in history
    ]
    body = (
        f"<p><a href='index.html'>index</a></p><h1>{_e(key)}</h1>"
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
        + "</p><h2>Release history</h2>"
        + (
            _table(["release", "created", "version", ""], release_rows)
            if release_rows
            else "<p class='muted'>never released</p>"
        )
        + "<h2>Quality score over time</h2>"
        + quality_chart(scores)
    )
    return _page(key, body)


def quality_chart(points: list[dict], width: int = 480, height: int = 120) -> str:
    """An inline SVG line of the share of passed checks per run (0..1), oldest left."""
    if not points:
        return "<p class='muted'>no checks recorded yet</p>"
    step = width / max(len(points) - 1, 1)
    coords = [
        (round(i * step, 1), round(height - float(p["score"]) * height, 1))
        for i, p in enumerate(points)
    ]
    line = " ".join(f"{x},{y}" for x, y in coords)
    dots = "".join(
        f"<circle cx='{x}' cy='{y}' r='3'><title>{_e(p['at'])}: {float(p['score']):.0%} of "
        f"{p['checks']} checks</title></circle>"
        for (x, y), p in zip(coords, points, strict=True)
    )
    return (
        f"<svg class='quality' xmlns='http://www.w3.org/2000/svg' width='{width + 10}' "
        f"height='{height + 10}' viewBox='-5 -5 {width + 10} {height + 10}'>"
        f"<rect x='0' y='0' width='{width}' height='{height}' fill='none' stroke='#ddd'/>"
        f"<polyline fill='none' stroke='#2a6' stroke-width='2' points='{line}'/>{dots}</svg>"
    )
