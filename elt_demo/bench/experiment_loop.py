"""The analyst's experiment loop, step by step, against plain dbt of the same edit (issue 14).

For each data size (10 K and 1 M orders; 10 M with `ELT_BENCH_10M=1`) and each side ("before" = the
platform at `ELT_BENCH_BASELINE`, extracted with `git archive`; "after" = this checkout; "warm" =
this checkout with a warm process, `elt warm start`, serving the loop's commands;
`ELT_BENCH_SIDES=after,warm` skips the baseline tree), a child process builds and promotes staging
(not measured), then times every `elt` command as a person types it: start-up commands, sandbox
create, a no-change sandbox build, then the edit (a column `int_orders_enriched`'s downstream
models do not select), plan, build, diff, staging build, a no-change staging build, promote. Plain
`dbt build --select int_orders_enriched+` of the same edit on a copy of staging's dbt database
(partial parse warm) runs right before plan + build. Wall and CPU (with children).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from elt_demo.bench.children import run_child
from elt_demo.bench.rebuild import _baseline_tree
from elt_demo.sources import ensure_synthetic_sources
from elt_platform.settings import REPO_ROOT

BASELINE_COMMIT = "24f9ddf"  # the `speed` branch's base (pipeline merged with main)
MODEL = "int_orders_enriched"
# A new column no downstream model selects, declared (with its sensitivity) like any column.
EDITS = [
    [
        "models/intermediate/int_orders_enriched.sql",
        "    orders.updated_at\nfrom orders",
        "    orders.updated_at,\n    1 AS bench_flag\nfrom orders",
    ],
    [
        "models/intermediate/_intermediate.yml",
        "      - name: updated_at\n",
        "      - name: bench_flag\n        description: Benchmark edit.\n"
        "        data_type: integer\n        config:\n          meta: {sensitivity: internal}\n"
        "      - name: updated_at\n",
    ],
]
CHILD = Path(__file__).with_name("experiment_loop_child.py")
NO_JOB = ("help", "env_list", "releases", "sql", "create", "sandbox_list", "sandbox_show")
LOOP = ("create", "plan", "build", "diff", "staging", "promote")


def _measure(code: Path, sources: Path, work: Path, warm: bool = False) -> dict:
    work.mkdir(parents=True)
    args = [str(sources), str(work), MODEL, json.dumps(EDITS)]
    env = {"ELT_BENCH_WARM": "1" if warm else "0"}
    return run_child(CHILD, code, work, args, timeout=7200, env=env)


def _entry(metric: str, value: float, baseline: float | None, notes: str, unit="s") -> dict:
    ratio = None if not baseline else round(value / baseline, 2)
    return {
        "name": "experiment_loop",
        "metric": metric,
        "value": round(value, 2),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 2),
        "ratio": ratio,
        "notes": notes,
    }


def _entries(side: str, rows: int, result: dict) -> list[dict]:
    steps = result["steps"]
    tag = f"{side}@{rows:,}"
    out = []
    for name, step in steps.items():
        out.append(_entry(f"{name} {tag}", step["wall"], None, f"wall; CPU {step['cpu']:.2f} s"))
    plain = steps["plain_dbt"]
    loop = {k: steps["plan"][k] + steps["build"][k] for k in ("wall", "cpu")}
    out.append(
        _entry(
            f"T1 plan+build vs plain dbt {tag}",
            loop["wall"],
            plain["wall"],
            f"wall, ratio = loop / plain `dbt build --select model+` (target <= 1.3); CPU "
            f"{loop['cpu']:.1f} s vs {plain['cpu']:.1f} s ({loop['cpu'] / plain['cpu']:.2f}x)",
        )
    )
    slowest = max(NO_JOB, key=lambda k: steps[k]["wall"])
    out.append(
        _entry(
            f"T2 slowest no-job command {tag}",
            steps[slowest]["wall"],
            1.0,
            f"{slowest}; wall, target <= 1 s; CPU {steps[slowest]['cpu']:.2f} s; "
            + ", ".join(f"{k} {steps[k]['wall']:.2f}" for k in NO_JOB),
        )
    )
    for name in ("sandbox_build_nochange", "staging_nochange"):
        out.append(
            _entry(
                f"T3 {name} {tag}",
                steps[name]["wall"],
                1.5,
                f"wall, target <= 1.5 s; CPU {steps[name]['cpu']:.2f} s",
            )
        )
    cycle = {k: sum(steps[s][k] for s in LOOP) for k in ("wall", "cpu")}
    out.append(
        _entry(
            f"T4 whole cycle {tag}",
            cycle["wall"],
            20.0 if rows >= 1_000_000 else None,
            f"create+plan+build+diff+staging+promote wall (target <= 20 s at 1 M; SQLMesh "
            f"CLI ~40 s at 10 M); CPU {cycle['cpu']:.1f} s",
        )
    )
    out.append(
        _entry(
            f"T7 models the plan recomputes {tag}",
            result["plan_recompute"],
            None,
            "; ".join(result["plan_lines"]),
            unit="models",
        )
    )
    return out


def run(results_dir: Path, rows: tuple[int, ...] | int = (10_000, 1_000_000)) -> list[dict]:
    sizes = (rows,) if isinstance(rows, int) else tuple(rows)
    if os.environ.get("ELT_BENCH_10M") == "1":
        sizes = (*sizes, 10_000_000)
    sides = os.environ.get("ELT_BENCH_SIDES", "before,after,warm").split(",")
    commit = os.environ.get("ELT_BENCH_BASELINE", BASELINE_COMMIT)
    entries: list[dict] = []
    raw: dict = {"baseline_commit": commit}
    for size in sizes:
        work = (results_dir.parent / "work" / f"experiment_loop_{size}").resolve()
        shutil.rmtree(work, ignore_errors=True)
        sources = work / "sources"
        ensure_synthetic_sources(sources, rows=size, seed=42)
        for side in sides:
            code = _baseline_tree(commit, work / "before_code") if side == "before" else REPO_ROOT
            result = _measure(code, sources, work / side, warm=side == "warm")
            raw[f"{side}@{size}"] = result
            entries += _entries(side, size, result)
            print(json.dumps(entries[-8:], indent=1), flush=True)
        shutil.rmtree(work, ignore_errors=True)
    (results_dir / "experiment_loop_raw.json").write_text(json.dumps(raw, indent=2))
    return entries
