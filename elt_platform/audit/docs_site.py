"""The docs site's navigation, client-side search and lineage graph.

Search: every page carries a search box over `assets/search-index.js` (a JS file, not JSON, so
the site also works opened from disk, where browsers refuse to fetch files); entries are assets
and columns with their descriptions, owners, sensitivity. Lineage: table and column level,
drawn by cytoscape.js (vendored in `static/`, MIT) from the catalog's edges; the graph elements
are embedded as JSON beside the script.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from elt_platform.project.column_lineage import KINDS

STATIC = Path(__file__).with_name("static")
CYTOSCAPE_JS = "cytoscape.min.js"
SEARCH_JS = "search-index.js"
ASSETS_DIR = "assets"

NAV = (
    "<nav><a href='index.html'>catalog</a> &middot; <a href='dashboard.html'>dashboard</a>"
    " &middot; <a href='lineage.html'>lineage graph</a> &middot; "
    "<input id='search' type='search' placeholder='search assets and columns' size='30'>"
    "<ul id='search-results'></ul></nav>"
)
SEARCH_SCRIPT = f"""<script src='{ASSETS_DIR}/{SEARCH_JS}'></script><script>
(function () {{
  const box = document.getElementById('search'), out = document.getElementById('search-results');
  box.addEventListener('input', function () {{
    const terms = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    out.innerHTML = '';
    if (!terms.length) return;
    const hits = window.SEARCH_INDEX.filter(e => terms.every(t => e.text.includes(t))).slice(0, 20);
    for (const e of hits) {{
      const li = document.createElement('li'), a = document.createElement('a');
      a.href = e.page; a.textContent = e.title; li.appendChild(a);
      li.appendChild(document.createTextNode(' ' + e.kind + (e.summary ? ': ' + e.summary : '')));
      out.appendChild(li);
    }}
  }});
}})();
</script>"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def search_entries(assets: list[dict], columns: list[dict], page_name) -> list[dict[str, str]]:
    """One entry per asset and per column: title, page, kind, summary, lower-cased text."""
    entries = []
    for a in assets:
        text = " ".join(
            str(a.get(k) or "") for k in ("asset", "description", "owner", "layer", "objective")
        )
        entries.append(
            {
                "title": a["asset"],
                "page": page_name(a["asset"]),
                "kind": "asset",
                "summary": a.get("description") or "",
                "text": text.lower(),
            }
        )
    for c in columns:
        text = " ".join(
            str(c.get(k) or "")
            for k in ("asset", "column_name", "description", "data_type", "effective_sensitivity")
        )
        entries.append(
            {
                "title": f"{c['asset']}.{c['column_name']}",
                "page": page_name(c["asset"]),
                "kind": "column",
                "summary": f"{c.get('data_type') or ''} {c.get('effective_sensitivity') or ''}",
                "text": text.lower(),
            }
        )
    return entries


def write_assets(target: Path, entries: list[dict[str, str]]) -> None:
    """The search index and the vendored graph library, under `target/assets/`."""
    folder = target / ASSETS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SEARCH_JS).write_text(f"window.SEARCH_INDEX = {json.dumps(entries)};\n")
    shutil.copy(STATIC / CYTOSCAPE_JS, folder / CYTOSCAPE_JS)


def graph_elements(
    assets: list[dict], table_edges: list[dict], column_edges: list[dict], page_name
) -> dict[str, list[dict]]:
    """Cytoscape elements of the table-level and the column-level graph."""
    tables = [
        {
            "data": {
                "id": a["asset"],
                "label": a["asset"],
                "layer": a.get("layer") or "",
                "href": page_name(a["asset"]),
            }
        }
        for a in assets
    ]
    known = {a["asset"] for a in assets}
    tables += [
        {
            "data": {
                "id": f"{e['upstream']}->{e['downstream']}",
                "source": e["upstream"],
                "target": e["downstream"],
            }
        }
        for e in table_edges
        if e["upstream"] in known and e["downstream"] in known
    ]
    nodes: dict[str, dict] = {}
    edges = []
    for e in column_edges:
        source = f"{e['source_asset']}.{e['source_column']}"
        target = f"{e['target_asset']}.{e['target_column']}"
        for node, asset in ((source, e["source_asset"]), (target, e["target_asset"])):
            nodes.setdefault(node, {"data": {"id": node, "label": node, "href": page_name(asset)}})
        edges.append(
            {
                "data": {
                    "id": f"{source}->{target}:{e['kind']}",
                    "source": source,
                    "target": target,
                    "kind": e["kind"],
                    "direct": int(e["kind"] in KINDS),
                }
            }
        )
    return {"tables": tables, "columns": [*nodes.values(), *edges]}


def lineage_body(elements: dict[str, list[dict]]) -> tuple[str, str]:
    """(body HTML, script HTML) of the lineage graph page."""
    n_tables = sum(1 for e in elements["tables"] if "source" not in e["data"])
    n_columns = sum(1 for e in elements["columns"] if "source" not in e["data"])
    body = (
        "<h1>Lineage</h1><p class='muted'>Click a node to open its page. Column edges: "
        "solid = the value is computed from it, dashed = it decides which rows (filter, join, "
        f"group).</p><h2>Tables ({n_tables})</h2><div id='graph-tables' class='graph'></div>"
        f"<h2>Columns ({n_columns})</h2><div id='graph-columns' class='graph tall'></div>"
    )
    data = json.dumps(elements).replace("</", "<\\/")
    script = (
        f"<script src='{ASSETS_DIR}/{CYTOSCAPE_JS}'></script>"
        f"<script type='application/json' id='graph-data'>{data}</script><script>"
        "const els = JSON.parse(document.getElementById('graph-data').textContent);"
        "const style = [{selector: 'node', style: {label: 'data(label)', 'font-size': 9,"
        " 'background-color': '#48a', 'text-valign': 'bottom'}},"
        " {selector: 'edge', style: {'curve-style': 'bezier', 'target-arrow-shape': 'triangle',"
        " width: 1.5, 'line-color': '#999', 'target-arrow-color': '#999'}},"
        " {selector: 'edge[direct = 0]',"
        " style: {'line-style': 'dashed'}}];"
        "for (const [id, key] of [['graph-tables', 'tables'], ['graph-columns', 'columns']]) {"
        " const cy = cytoscape({container: document.getElementById(id), elements: els[key],"
        " style: style, layout: {name: 'breadthfirst', directed: true, spacingFactor: 1.1}});"
        " cy.on('tap', 'node', ev => { window.location.href = ev.target.data('href'); }); }"
        "</script>"
    )
    return body, script
