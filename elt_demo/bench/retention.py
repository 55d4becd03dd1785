"""Retention with cascades, then the recompute of what was derived from the rewritten versions.

Staging is built from the synthetic sources and published (not measured) on a copy of the demo
project whose 2555-day periods are 400 days; with "today" = 2026-01-01 about 45 % of orders and
payments expire. Measured: the retention run (relationships from the manifest and column lineage,
planning, rewriting every version prod/staging/the release hold, one metadata transaction) and the
dedicated staging run that recomputes the models downstream of the rewritten versions. Baseline:
the full staging build from the sources (what a rebuild without the planner would cost).
"""

from __future__ import annotations

import re
import resource
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from elt_demo.api import serving_demo_api
from elt_demo.sources import ensure_synthetic_sources
from elt_platform.access.facade import open_warehouse
from elt_platform.environments import STAGING
from elt_platform.launch.retention import enforce_and_recompute
from elt_platform.launch.runs import build_environment
from elt_platform.settings import REPO_ROOT, load_settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (dbt), load-independent."""
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def run(results_dir: Path, rows: int = 1_000_000) -> list[dict]:
    work = (results_dir.parent / "work" / f"retention_{rows}").resolve()
    shutil.rmtree(work, ignore_errors=True)
    sources = work / "sources"
    ensure_synthetic_sources(sources, rows=rows, seed=42)
    project = work / "dbt_project"
    shutil.copytree(
        REPO_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs")
    )
    for path in (project / "models").rglob("*.yml"):
        path.write_text(re.sub(r"retention: 2555d", "retention: 400d", path.read_text()))
    settings = load_settings(
        {
            "ELT_HOME": str(work / "home"),
            "DAGSTER_HOME": str(work / "home" / "dagster_home"),
            "ELT_SOURCES_DIR": str(sources),
            "ELT_PROJECT_DIR": str(project),
        }
    )
    with serving_demo_api(sources):
        started, cpu = time.perf_counter(), _cpu()
        first = build_environment(settings, STAGING)
        full_build, full_cpu = time.perf_counter() - started, _cpu() - cpu
        assert first.success, first.error
    wh = open_warehouse(settings)
    wh.publish(STAGING, triggered_by="bench", run_id=first.run_id)

    started, cpu = time.perf_counter(), _cpu()
    retention = enforce_and_recompute(wh, now=NOW, recompute=False)
    retention_s, retention_cpu = time.perf_counter() - started, _cpu() - cpu
    report = retention.report
    started, cpu = time.perf_counter(), _cpu()
    recompute = build_environment(settings, STAGING, selection=retention.recompute)
    recompute_s, recompute_cpu = time.perf_counter() - started, _cpu() - cpu
    assert recompute.success, recompute.error
    redone = sorted(a for a, o in recompute.assets.items() if o.recomputed)
    shutil.rmtree(work, ignore_errors=True)
    removed = (
        f"{report.rows_expired:,} rows expired + {report.rows_cascaded:,} by cascade "
        f"({len(report.cascades)} relationships) from {len(report.rewrites)} versions"
    )
    return [
        {
            "name": "retention",
            "metric": f"retention_run@{rows:,}",
            "value": round(retention_s, 2),
            "unit": "s",
            "baseline": None,
            "ratio": None,
            "notes": f"wall (CPU {retention_cpu:.1f} s), incl. reading relationships and "
            f"lineage; {removed}",
        },
        {
            "name": "retention",
            "metric": f"recompute_after_retention@{rows:,}",
            "value": round(recompute_s, 2),
            "unit": "s",
            "baseline": round(full_build, 2),
            "ratio": round(full_build / recompute_s, 2),
            "notes": f"wall; baseline = full staging build from the sources; ratio = times "
            f"faster; CPU {recompute_cpu:.1f} s vs {full_cpu:.1f} s; recomputed {len(redone)} "
            f"models ({', '.join(redone)}), sources reused",
        },
    ]
