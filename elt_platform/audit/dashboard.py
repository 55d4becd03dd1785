"""The docs site's dashboard page: Plotly charts (the library's own JS, shipped inside the pinned
`plotly` wheel, is copied beside the page, so it works offline) of rows, bytes, duration,
throughput and quality score per asset and environment over time, failure rate per asset,
freshness against each declared SLA (met/missed now and over its history) and alert volume per
rule. Each chart's figure is plain Plotly JSON, also embedded as data for tests and tools."""

from __future__ import annotations

import html
import json
import shutil
from importlib.util import find_spec
from pathlib import Path

from elt_platform.audit.observability import Observability, Point

PLOTLY_JS = "plotly.min.js"
METRICS = [  # (field of Point, chart title, y axis)
    ("rows", "Rows per materialization", "rows"),
    ("bytes", "Bytes per version", "bytes"),
    ("seconds", "Duration (latency) per materialization", "seconds"),
    ("rows_per_second", "Throughput", "rows / second"),
    ("quality_score", "Quality score", "score (0-100)"),
]


def vendor_plotly(assets_dir: Path) -> Path:
    """Copy plotly.min.js from the installed plotly package (no network, no CDN)."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the plotly package is not installed (`make install`)")
    source = Path(next(iter(spec.submodule_search_locations))) / "package_data" / PLOTLY_JS
    assets_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, assets_dir / PLOTLY_JS))


def _series(points: list[Point], metric: str) -> list[dict]:
    traces: dict[str, dict] = {}
    for p in points:
        value = getattr(p, metric)
        if value is None:
            continue
        name = f"{p.asset} @ {p.environment}"
        trace = traces.setdefault(
            name, {"type": "scatter", "mode": "lines+markers", "name": name, "x": [], "y": []}
        )
        trace["x"].append(p.at)
        trace["y"].append(value)
    return list(traces.values())


def _layout(title: str, yaxis: str, **extra) -> dict:
    return {
        "title": {"text": title},
        "height": 360,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
        "yaxis": {"title": {"text": yaxis}},
        "legend": {"font": {"size": 10}},
        **extra,
    }


def figures(obs: Observability) -> dict[str, dict]:
    """Chart id -> Plotly figure ({data, layout})."""
    out = {
        f"chart-{metric}": {"data": _series(obs.points, metric), "layout": _layout(title, axis)}
        for metric, title, axis in METRICS
    }
    environments = sorted({f.environment for f in obs.failures})
    out["chart-failure-rate"] = {
        "data": [
            {
                "type": "bar",
                "name": env,
                "x": [f.asset for f in obs.failures if f.environment == env],
                "y": [round(f.rate * 100, 1) for f in obs.failures if f.environment == env],
                "text": [f"{f.failed}/{f.runs} runs" for f in obs.failures if f.environment == env],
            }
            for env in environments
        ],
        "layout": _layout("Failure rate per asset", "% of finished runs", barmode="group"),
    }
    slas = [s for s in obs.slas if s.history or s.last_update]
    out["chart-sla"] = {
        "data": [
            {
                "type": "bar",
                "name": label,
                "x": [f"{s.asset} @ {s.environment}" for s in slas],
                "y": [sum(1 for _, ok in s.history if ok is met) for s in slas],
                "marker": {"color": color},
            }
            for label, met, color in (("met", True, "#2a6"), ("missed", False, "#c33"))
        ],
        "layout": _layout("Freshness SLA: updates within max lag", "updates", barmode="stack"),
    }
    out["chart-alerts"] = {
        "data": [
            {
                "type": "bar",
                "name": label,
                "x": [f"{a.dataset} ({a.kind})" for a in obs.alerts],
                "y": [getattr(a, attr) for a in obs.alerts],
            }
            for label, attr in (("sent", "sent"), ("suppressed repeats", "suppressed"))
        ],
        "layout": _layout("Alert volume per rule", "alerts", barmode="stack"),
    }
    return out


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _sla_table(obs: Observability) -> str:
    rows = "".join(
        f"<tr><td>{_e(s.asset)}</td><td>{_e(s.environment)}</td><td>{_e(s.max_lag)}</td>"
        f"<td>{_e(s.last_update or 'never')}</td>"
        f"<td class='{'ok' if s.met_now else 'bad'}'>{'met' if s.met_now else 'missed'}</td>"
        f"<td>{sum(ok for _, ok in s.history)}/{len(s.history)}</td></tr>"
        for s in obs.slas
    )
    return (
        "<table class='sla'><tr><th>asset</th><th>environment</th><th>max lag</th>"
        "<th>last update</th><th>now</th><th>updates within lag</th></tr>"
        f"{rows}</table>"
    )


def _alert_table(obs: Observability) -> str:
    if not obs.alerts:
        return "<p class='muted'>no alerts raised yet</p>"
    rows = "".join(
        f"<tr><td>{_e(a.dataset)}</td><td>{_e(a.kind)}</td><td>{a.sent}</td>"
        f"<td>{a.suppressed}</td><td>{_e(a.last_at)}</td></tr>"
        for a in obs.alerts
    )
    return (
        "<table class='alerts'><tr><th>dataset</th><th>rule</th><th>sent</th>"
        f"<th>suppressed repeats</th><th>last sent</th></tr>{rows}</table>"
    )


def dashboard_body(obs: Observability) -> tuple[str, str]:
    """(body HTML, script HTML) of the dashboard page; the script expects Plotly loaded."""
    figs = figures(obs)
    charts = "".join(f"<div class='chart' id='{_e(cid)}'></div>" for cid in figs)
    body = (
        "<h1>Dashboard</h1><p class='muted'>Per environment and asset, from Dagster's event log "
        f"and the metadata store: {len(obs.points)} computed materializations.</p>"
        f"{charts}<h2>Freshness SLAs</h2>{_sla_table(obs)}"
        f"<h2>Alert fatigue review</h2>{_alert_table(obs)}"
    )
    data = json.dumps(figs).replace("</", "<\\/")
    script = (
        f"<script type='application/json' id='dashboard-data'>{data}</script>"
        "<script>const figs = JSON.parse(document.getElementById('dashboard-data').textContent);"
        "for (const [id, f] of Object.entries(figs)) {"
        " Plotly.newPlot(id, f.data, f.layout, {displayModeBar: false, responsive: true}); }"
        "</script>"
    )
    return body, script
