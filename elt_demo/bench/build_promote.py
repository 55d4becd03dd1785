"""First build + promote on a fresh home against bare DuckDB + plain dbt; HTTP extraction; peak RSS.

One run, back to back, on the same landing data (1 M orders; `ELT_BENCH_10M=1` adds the T6
peak-RSS build at 10 M). Every measured step is a fresh process, as a person types it, timed in
wall and CPU of its whole process tree (`os.wait4` of the child: its own and its waited-for
descendants' CPU, i.e. dbt's too):
- T5: `elt build staging` + `elt promote` on a fresh home against the baseline: a bare-DuckDB load
  of the same sources (`build_promote_baseline.py`: SQLite, CSV, Parquet, and the Parquet files
  behind the HTTP API) plus a plain `dbt build` of the unmodified project on that file (its own
  profiles.yml, same threads, cold parse like the platform's first build). Target ratio <= 1.5.
- HTTP: `elt build staging --select raw/payments` on another fresh home; pages/s and rows/s over
  the window the demo API served requests and over the whole command, against DuckDB reading the
  same rows from the Parquet files into a table (a fresh process, too).
- T6: peak RSS of the `elt build staging` tree. ru_maxrss from wait4 is the largest single
  process of the tree (per process, not the sum); the sum over the tree is also sampled from
  /proc every 0.2 s. Target < 2 GB at 10 M.
The demo API runs in this process (a thread), so its CPU (JSON encoding) is not in the children's
CPU; it is reported separately. The load average is recorded around every step (shared machine).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from elt_demo.api import serving_demo_api
from elt_demo.sources import ensure_synthetic_sources
from elt_platform.settings import REPO_ROOT

NAME = "build_promote"
BASELINE = Path(__file__).with_name("build_promote_baseline.py")
BIG = 10_000_000
MB = 1024 * 1024


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _tree_rss(root: int) -> int:
    """Sum of the RSS (bytes) of `root` and its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


class _Sampler(threading.Thread):
    """Peak of the process tree's summed RSS while a command runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()
        self.timeline: list[tuple[float, float]] = []  # (s since start, tree MB), on changes

    def run(self) -> None:
        started, last = time.perf_counter(), (-10.0, 0.0)
        while not self.done.wait(0.2):
            rss = _tree_rss(self.pid)
            self.peak = max(self.peak, rss)
            now, mb = time.perf_counter() - started, rss / MB
            if abs(mb - last[1]) >= 100 or now - last[0] >= 10:
                last = (round(now, 1), round(mb))
                self.timeline.append(last)


def _timed(cmd: list[str], *, cwd: Path, env: dict, log: Path) -> dict:
    """Run `cmd`; wall, CPU and peak RSS of its process tree; its output goes to `log`."""
    load = _loadavg()
    self_cpu = sum(os.times()[:2])
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = _Sampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.done.set()
        sampler.join()
    wall = time.perf_counter() - started
    text = log.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} failed ({proc.returncode}):\n{text[-4000:]}")
    return {
        "wall": round(wall, 3),
        "cpu": round(usage.ru_utime + usage.ru_stime, 3),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux: largest process
        "tree_rss_mb": round(sampler.peak / MB, 1),  # sampled sum over the tree
        "this_process_cpu": round(sum(os.times()[:2]) - self_cpu, 3),  # the API thread, mostly
        "rss_timeline": sampler.timeline,  # when the tree's memory moved by >= 100 MB
        "started_at": round(time.time() - wall, 1),  # to match Dagster step events
        "load_before": load,
        "load_after": _loadavg(),
        "output": text,
    }


def _step_peaks(step: dict, dagster_home: Path) -> dict[str, float]:
    """Peak tree RSS (MB, from the sampled timeline: within ~100 MB) while each Dagster step of
    the run ran, from the run's event log; `start-up` is before the first step."""
    import sqlite3
    from datetime import UTC, datetime

    windows: dict[str, list[float]] = {}
    for db in sorted((dagster_home / "history" / "runs").glob("*.db")):
        con = sqlite3.connect(db)
        try:
            events = con.execute(
                "select timestamp, dagster_event_type, step_key from event_logs where "
                "dagster_event_type in ('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE') order by id"
            ).fetchall()
        finally:
            con.close()
        for stamp, kind, key in events:
            at = datetime.fromisoformat(str(stamp)).replace(tzinfo=UTC).timestamp()
            at -= step["started_at"]
            window = windows.setdefault(key, [at, at])
            window[1] = at if kind != "STEP_START" else window[1]
    first = min((w[0] for w in windows.values()), default=step["wall"])
    windows = {"start-up": [0.0, first], **windows}
    step["step_seconds"] = {k: round(end - start, 1) for k, (start, end) in windows.items()}
    timeline = step["rss_timeline"]  # a sample is the level until the next one

    def peak(start: float, end: float) -> float:
        carried = [mb for t, mb in timeline if t <= start][-1:]
        return max([mb for t, mb in timeline if start < t <= end] + carried, default=0)

    return {key: peak(start, end) for key, (start, end) in windows.items()}


def _result_line(text: str) -> dict:
    lines = [x for x in text.splitlines() if x.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT ") :])


class _Requests(threading.Thread):
    """When the demo API served its first and last request (polled every 20 ms)."""

    def __init__(self, api) -> None:
        super().__init__(daemon=True)
        self.api, self.done = api, threading.Event()
        self.base = self.api.stats.get("ok", 0)
        self.first: float | None = None
        self.last: float | None = None
        self.count = 0

    def run(self) -> None:
        seen = self.base
        while not self.done.wait(0.02):
            now, ok = time.perf_counter(), self.api.stats.get("ok", 0)
            if ok != seen:
                self.first = self.first or now
                self.last, seen = now, ok
        self.count = self.api.stats.get("ok", 0) - self.base


class _Case:
    """A fresh home, a copy of the dbt project and the commands run against them."""

    def __init__(self, work: Path, sources: Path, api_env: dict) -> None:
        self.work = work
        work.mkdir(parents=True)
        self.project = work / "dbt_project"
        shutil.copytree(
            REPO_ROOT / "dbt_project",
            self.project,
            ignore=shutil.ignore_patterns("target", "logs"),
        )
        home = work / "home"
        self.env = {
            **os.environ,
            **api_env,
            "ELT_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster_home"),
            "ELT_SOURCES_DIR": str(sources),
            "ELT_DBT_PROJECT_DIR": str(self.project),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "COLUMNS": "200",
        }

    def elt(self, step: str, *args: str) -> dict:
        cmd = [sys.executable, "-m", "elt_platform", *args]
        return _timed(cmd, cwd=self.work, env=self.env, log=self.work / f"{step}.log")


def _plain_dbt(case: _Case, db: Path) -> dict:
    """`dbt build` of the unmodified project on `db` (its own profiles.yml, threads as ours)."""
    import yaml

    from elt_platform.project.dbt_project import DbtProjectConfig

    plain = db.parent
    profile = yaml.safe_load((case.project / "dbt_project.yml").read_text())["profile"]
    threads = DbtProjectConfig.__dataclass_fields__["threads"].default
    output = {"type": "duckdb", "path": str(db), "threads": threads}
    (plain / "profiles.yml").write_text(
        yaml.safe_dump({profile: {"target": "plain", "outputs": {"plain": output}}})
    )
    cmd = [
        str(Path(sys.executable).parent / "dbt"),
        "--no-send-anonymous-usage-stats",
        "build",
        "--project-dir", str(case.project),
        "--profiles-dir", str(plain),
        "--target-path", str(plain / "target"),
        "--log-path", str(plain / "logs"),
    ]  # fmt: skip
    return _timed(cmd, cwd=case.project, env=case.env, log=plain / "dbt_build.log")


def _bare_load(case: _Case, sources: Path, db: Path, tables: str, step: str) -> dict:
    db.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(BASELINE), str(sources), str(db), tables]
    env = {**case.env, "PYTHONPATH": str(REPO_ROOT)}
    result = _timed(cmd, cwd=db.parent, env=env, log=db.parent / f"{step}.log")
    result.update(_result_line(result["output"]))
    return result


def _measure(rows: int, sources: Path, work: Path, *, full: bool) -> dict:
    _, counts = ensure_synthetic_sources(sources, rows=rows, seed=42)
    shutil.rmtree(work, ignore_errors=True)
    steps: dict[str, dict] = {}
    http: dict = {}
    with serving_demo_api(sources) as api:
        api_env = {k: os.environ[k] for k in ("ELT_DEMO_API_URL", "ELT_DEMO_API_TOKEN")}
        platform = _Case(work / "platform", sources, api_env)
        # Warm the page cache for Python, Dagster and dbt (not measured).
        _timed([sys.executable, "-m", "elt_platform", "--help"], cwd=platform.work,
               env=platform.env, log=platform.work / "warm.log")  # fmt: skip
        requests = _Requests(api)
        requests.start()
        steps["build"] = platform.elt("build", "build", "staging")
        requests.done.set()
        requests.join()
        http["full_build_pages"] = requests.count
        steps["build"]["step_peak_rss_mb"] = _step_peaks(
            steps["build"], Path(platform.env["DAGSTER_HOME"])
        )
        if not full:
            return {"rows": rows, "counts": counts, "steps": _strip(steps)}
        steps["promote"] = platform.elt("promote", "promote")

        plain = _Case(work / "plain", sources, api_env)
        bare_db = plain.work / "bare" / "bare.duckdb"
        steps["bare_load"] = _bare_load(plain, sources, bare_db, "", "bare_load")
        steps["plain_dbt"] = _plain_dbt(plain, bare_db)

        extract = _Case(work / "http", sources, api_env)
        requests = _Requests(api)
        requests.start()
        steps["http_extract"] = extract.elt("http", "build", "staging", "--select", "raw/payments")
        requests.done.set()
        requests.join()
        http.update(
            pages=requests.count,
            fetch_window=round((requests.last or 0) - (requests.first or 0), 3),
        )
        steps["parquet_payments"] = _bare_load(
            extract, sources, extract.work / "duckdb" / "payments.duckdb", "payments", "parquet"
        )
    return {"rows": rows, "counts": counts, "http": http, "steps": _strip(steps)}


def _strip(steps: dict[str, dict]) -> dict[str, dict]:
    for step in steps.values():
        step.pop("output", None)
    return steps


def _entry(metric: str, value: float, baseline: float | None, notes: str, unit="s") -> dict:
    return {
        "name": NAME,
        "metric": metric,
        "value": round(value, 2),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 2),
        "ratio": None if not baseline else round(value / baseline, 2),
        "notes": notes,
    }


def _load_note(*steps: dict) -> str:
    values = [x for s in steps for x in (s["load_before"][0], s["load_after"][0])]
    return f"load avg (1 min) {min(values):.1f}-{max(values):.1f}"


def _entries(result: dict) -> list[dict]:
    rows, s = result["rows"], result["steps"]
    tag = f"@{rows:,}"
    build = s["build"]
    out = []
    t6 = (
        f"largest single process of the `elt build staging` tree (wait4 ru_maxrss; per process, "
        f"not a sum); tree sum sampled every 0.2 s: {build['tree_rss_mb']:.0f} MB; target < 2 GB "
        f"at 10 M; {_load_note(build)}"
    )
    if build.get("step_peak_rss_mb"):
        t6 += "; tree peak by step (MB, sampled): " + ", ".join(
            f"{k} {v:.0f}" for k, v in build["step_peak_rss_mb"].items()
        )
    out.append(_entry(f"T6 peak RSS staging build {tag}", build["max_rss_mb"], None, t6, "MB"))
    if "promote" not in s:
        out.append(
            _entry(
                f"staging build {tag}",
                build["wall"],
                None,
                f"wall; CPU {build['cpu']:.1f} s (with dbt); {_load_note(build)}",
            )
        )
        return out
    ours = {k: build[k] + s["promote"][k] for k in ("wall", "cpu")}
    base = {k: s["bare_load"][k] + s["plain_dbt"][k] for k in ("wall", "cpu")}
    load = _load_note(build, s["promote"], s["bare_load"], s["plain_dbt"])
    if build.get("step_seconds"):
        load += "; build wall by Dagster step: " + ", ".join(
            f"{k} {v:.1f}" for k, v in build["step_seconds"].items()
        )
    out.append(
        _entry(
            f"T5 build+promote vs bare load+dbt {tag} (wall)",
            ours["wall"],
            base["wall"],
            f"`elt build staging` {build['wall']:.1f} + `elt promote` {s['promote']['wall']:.1f} "
            f"on a fresh home vs bare DuckDB load {s['bare_load']['wall']:.1f} (in-script "
            f"{s['bare_load']['seconds']:.1f}) + plain `dbt build` {s['plain_dbt']['wall']:.1f}; "
            f"fresh processes; target ratio <= 1.5; {load}",
        )
    )
    out.append(
        _entry(
            f"T5 build+promote vs bare load+dbt {tag} (CPU)",
            ours["cpu"],
            base["cpu"],
            f"CPU incl. children: build {build['cpu']:.1f} + promote {s['promote']['cpu']:.1f} vs "
            f"bare load {s['bare_load']['cpu']:.1f} + dbt {s['plain_dbt']['cpu']:.1f}; plus "
            f"{build['this_process_cpu']:.1f} s in the demo API serving payments (not counted)",
        )
    )
    http, ext, pq = result["http"], s["http_extract"], s["parquet_payments"]
    payments = result["counts"]["payments"]
    window = http["fetch_window"] or ext["wall"]
    out.append(
        _entry(
            f"HTTP raw/payments extraction {tag}",
            ext["wall"],
            pq["wall"],
            f"`elt build staging --select raw/payments`, fresh home: {payments:,} rows in "
            f"{http['pages']} pages; API served them in {window:.1f} s = "
            f"{http['pages'] / window:.0f} pages/s, {payments / window:,.0f} rows/s "
            f"(whole command {payments / ext['wall']:,.0f} rows/s); CPU {ext['cpu']:.1f} s + "
            f"API {ext['this_process_cpu']:.1f} s; baseline: DuckDB reads the same rows from the "
            f"Parquet files into a table, fresh process {pq['wall']:.1f} s (in-script "
            f"{pq['seconds']:.2f} s, CPU {pq['cpu']:.1f} s); {_load_note(ext, pq)}",
        )
    )
    out.append(
        _entry(
            f"HTTP raw/payments fetch window vs DuckDB Parquet read {tag}",
            window,
            pq["seconds"],
            f"first to last API request ({http['pages'] / window:.0f} pages/s, "
            f"{payments / window:,.0f} rows/s) vs the in-script DuckDB read of the Parquet files",
        )
    )
    return out


def _markdown(raw: dict, entries: list[dict]) -> str:
    lines = [
        f"# {NAME}: first build + promote, HTTP extraction, peak RSS",
        "",
        "Every step is a fresh process; wall / CPU seconds (CPU includes children: dbt), "
        "max RSS = largest single process of the tree (wait4 ru_maxrss), tree RSS = sampled sum.",
        f"Machine: {os.cpu_count()} cores, shared; load average (1/5/15 min) per step below.",
        "",
    ]
    for result in raw.values():
        counts = ", ".join(f"{k} {v:,}" for k, v in result["counts"].items())
        when = f"{result['measured_at']}, {result['commit']}"
        lines += [
            f"## {result['rows']:,} orders ({counts}); {when}",
            "",
            "| step | wall | CPU | max RSS MB | tree RSS MB | load before | load after |",
            "|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for name, st in result["steps"].items():
            lines.append(
                f"| {name} | {st['wall']:.1f} | {st['cpu']:.1f} | {st['max_rss_mb']:.0f} "
                f"| {st['tree_rss_mb']:.0f} | {st['load_before']} | {st['load_after']} |"
            )
        lines.append("")
    lines += ["## Entries", ""]
    lines += [f"- {e['metric']}: {e['value']} {e['unit']}"
              + (f" vs {e['baseline']} ({e['ratio']}x)" if e["ratio"] else "")
              + f" -- {e['notes']}" for e in entries]  # fmt: skip
    return "\n".join(lines) + "\n"


def run(results_dir: Path, rows: int = 1_000_000) -> list[dict]:
    """T5 + HTTP + T6 at `rows`; T6 also at 10 M with ELT_BENCH_10M=1 (`ELT_BENCH_10M=only`:
    just that). Landing data is kept under bench/work/build_promote/sources_<rows> for reuse."""
    flag = os.environ.get("ELT_BENCH_10M", "")
    plan = [] if flag == "only" else [(rows, True)]
    if flag in {"1", "only"} and rows != BIG:
        plan.append((BIG, False))
    root = (Path(results_dir).parent / "work" / NAME).resolve()
    # Sizes not measured now keep their last result (each says when and at which commit).
    raw_path = Path(results_dir) / f"{NAME}_raw.json"
    raw: dict = json.loads(raw_path.read_text()) if raw_path.exists() else {}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    for size, full in plan:
        result = _measure(size, root / f"sources_{size}", root / f"run_{size}", full=full)
        result.update(commit=commit, measured_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        raw[f"{size}"] = result
        print(json.dumps(_entries(result), indent=1), flush=True)
        if os.environ.get("ELT_BENCH_KEEP") != "1":  # 1: keep homes and logs to inspect
            shutil.rmtree(root / f"run_{size}", ignore_errors=True)
    raw = dict(sorted(raw.items(), key=lambda kv: int(kv[0])))
    raw_path.write_text(json.dumps(raw, indent=2))
    entries = [e for result in raw.values() for e in _entries(result)]
    (Path(results_dir) / f"{NAME}.md").write_text(_markdown(raw, entries))
    return entries
