"""Staging rebuild after a one-model change, before vs after the one planner (same run, same data).

Each side runs in its own process with its own code tree on PYTHONPATH: "before" is the platform
at the commit preceding the planner (`ELT_BENCH_BASELINE`, default below, extracted with
`git archive`), "after" is this checkout. Both build staging once from the same landing data
(not measured), then `int_orders_enriched` gains a column and staging is built again: that
second build is measured (wall and CPU of the process and its children, i.e. dbt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from elt_demo.bench.children import run_child
from elt_demo.sources import ensure_synthetic_sources
from elt_platform.settings import REPO_ROOT

BASELINE_COMMIT = "4578a35"  # main before builds/planner for staging (issue 12)
MODEL = "models/intermediate/int_orders_enriched.sql"
EDIT = (
    "    orders.updated_at\nfrom orders",
    "    orders.updated_at,\n    1 AS bench_flag\nfrom orders",
)

CHILD = Path(__file__).with_name("rebuild_child.py")  # runs against either code tree


def _baseline_tree(commit: str, target: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryFile() as tmp:
        tmp.write(archive)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp) as tar:
            tar.extractall(target, filter="data")
    return target


def _measure(code: Path, sources: Path, work: Path) -> dict:
    work.mkdir(parents=True)
    return run_child(CHILD, code, work, [str(sources), str(work), *EDIT], timeout=3600)


def run(results_dir: Path, rows: int = 1_000_000) -> list[dict]:
    work = (results_dir.parent / "work" / f"rebuild_{rows}").resolve()
    shutil.rmtree(work, ignore_errors=True)
    sources = work / "sources"
    ensure_synthetic_sources(sources, rows=rows, seed=42)
    commit = os.environ.get("ELT_BENCH_BASELINE", BASELINE_COMMIT)
    before_code = _baseline_tree(commit, work / "before_code")
    before = _measure(before_code, sources, work / "before")
    after = _measure(REPO_ROOT, sources, work / "after")
    shutil.rmtree(work, ignore_errors=True)
    ratio_wall = round(before["wall"] / after["wall"], 2)
    ratio_cpu = round(before["cpu"] / after["cpu"], 2)
    recomputed = after["recomputed"] or []
    return [
        {
            "name": "rebuild",
            "metric": f"staging_after_one_model_change@{rows:,}",
            "value": round(after["wall"], 2),
            "unit": "s",
            "baseline": round(before["wall"], 2),
            "ratio": ratio_wall,
            "notes": f"wall; baseline = platform at {commit} (recomputes every model); ratio = "
            f"times faster; CPU {after['cpu']:.1f} s vs {before['cpu']:.1f} s ({ratio_cpu}x); "
            f"recomputed {len(recomputed)} dbt models ({', '.join(recomputed)}) vs every model "
            f"({before['materialized']} assets materialized); sources re-extracted in both",
        }
    ]
