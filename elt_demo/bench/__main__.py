"""`make bench`: run the benchmark suites, write bench/results/<name>.json and a markdown table."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time

from elt_platform.settings import REPO_ROOT

# Each suite module exposes run(results_dir, ...) -> list[dict]; missing modules are skipped.
SUITES = (
    "publish",
    "pipeline",
    "rebuild",
    "connectors",
    "sandboxes",
    "contracts",
    "integrity",
    "retention",
    "experiment_loop",
    "build_promote",
    "scale",
)


def _markdown(entries: list[dict]) -> str:
    lines = ["| suite | metric | value | baseline | ratio | notes |", "|---|---|---|---|---|---|"]
    for e in entries:
        base = "-" if e.get("baseline") is None else f"{e['baseline']} {e['unit']}"
        ratio = "-" if e.get("ratio") is None else f"{e['ratio']}x"
        lines.append(
            f"| {e['name']} | {e['metric']} | {e['value']} {e['unit']} | {base} | {ratio} "
            f"| {e.get('notes', '')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suites", nargs="*", metavar="SUITE", help="run only these suites")
    parser.add_argument("--only", nargs="*", choices=SUITES, help="run only these suites")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args()
    unknown = sorted(set(args.suites) - set(SUITES))
    if unknown:
        parser.error(f"unknown suites: {', '.join(unknown)} (choose from {', '.join(SUITES)})")
    results_dir = REPO_ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    everything: list[dict] = []
    for suite in args.suites or args.only or SUITES:
        try:
            module = importlib.import_module(f"elt_demo.bench.{suite}")
        except ModuleNotFoundError:
            continue
        kwargs = _quick_kwargs(suite) if args.quick else {}
        started = time.perf_counter()
        entries = module.run(results_dir, **kwargs)
        payload = {
            "suite": suite,
            "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
            "seconds": round(time.perf_counter() - started, 1),
            "entries": entries,
        }
        (results_dir / f"{suite}.json").write_text(json.dumps(payload, indent=2))
        everything.extend(entries)
        print(_markdown(entries), flush=True)
    table = _markdown(everything)
    (results_dir / "summary.md").write_text(table + "\n")
    print("\n" + table)


def _quick_kwargs(suite: str) -> dict:
    return {
        "publish": {"sizes": (10_000, 100_000)},
        "pipeline": {"rows": 10_000},
        "scale": {"quick": True},
    }.get(
        suite,
        {"rows": 10_000}
        if suite
        in {
            "connectors",
            "sandboxes",
            "contracts",
            "rebuild",
            "integrity",
            "retention",
            "experiment_loop",
            "build_promote",
        }
        else {},
    )


if __name__ == "__main__":
    main()
