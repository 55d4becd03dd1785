"""The control plane at scale: publish, rollback and sandbox creation with 1, 10 and 100 sandbox
environments and 10, 100 and 1,000 assets, on PostgreSQL (ELT_METADATA_URL) and, for comparison,
on the embedded SQLite default, in the same run.

Assets are synthetic: each is a tiny Parquet version (3 rows) committed through the version store,
so the numbers are control-plane costs (metadata store, ledger, catalogs), not data costs. For each
backend and asset count one installation is built (versions, staging pointers, a first release)
and grown to 1, 10 and 100 sandboxes; at each size we measure:

- publish: `elt promote`'s store step (staging -> prod release, ledger entry, prod catalog rebuild)
  after repointing 10 assets of staging at new versions (the repoint is timed separately);
- rollback: prod back and forth between the two newest releases;
- create_sandbox: the full platform step (pointers, ledger entry, experiment record, masked
  catalog), then dropped again (drop timed too);
- its parts: the prod catalog rebuild alone and the ledger's state snapshot alone;
- the metadata tables' row counts (and the database's size on Postgres).

Background sandboxes are registered like `create_sandbox` registers them (environment row, the
release's pointers and builds, a ledger entry, one transaction) but without building their
catalog files, which no other environment's operation reads.

Without a PostgreSQL URL (ELT_TEST_POSTGRES_URL or ELT_BENCH_POSTGRES_URL) a throwaway server is
started (elt_demo/services.py) and stopped by PID at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import duckdb

from elt_demo import services
from elt_platform.access.facade import GovernedWarehouse, open_store
from elt_platform.access.identity import Identity
from elt_platform.environments import PROD
from elt_platform.settings import load_settings
from elt_platform.sqlident import sql_literal
from elt_platform.store.ledger import LedgerKind
from elt_platform.store.state import state_snapshot
from elt_platform.store.versions import Version
from elt_platform.store.warehouse import Warehouse

ENVIRONMENTS = (1, 10, 100)
ASSETS = (10, 100, 1000)
CHANGED = 10  # assets repointed before each publish (all of them at 10 assets)
TABLES = (
    "environments",
    "env_pointers",
    "versions",
    "builds",
    "releases",
    "release_entries",
    "pointer_events",
    "ledger",
)
URL_VARS = ("ELT_BENCH_POSTGRES_URL", services.URL_VAR)
IDENTITY = Identity(user="bench@example.com", role="engineer", source="bench")


def _reps(assets: int, quick: bool) -> tuple[int, int]:
    """(publishes and rollbacks, sandbox creations) per size: fewer at the largest size."""
    if quick:
        return 3, 2
    return (9, 5) if assets <= 100 else (3, 2)


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _stats(samples: list[float]) -> dict:
    return {
        "median": round(statistics.median(samples), 4),
        "p95": round(_p95(samples), 4),
        "n": len(samples),
        "samples": [round(s, 4) for s in samples],
    }


# CPU seconds of this process per timed call, by label (wall times on a shared machine include
# waiting for a core; the bench process's CPU time does not).
_CPU: dict[str, list[float]] = {}


def _timed(fn, label: str | None = None) -> tuple[float, object]:
    started, cpu = time.perf_counter(), _cpu_self()
    out = fn()
    if label is not None:
        _CPU.setdefault(label, []).append(_cpu_self() - cpu)
    return time.perf_counter() - started, out


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu(pid: int) -> float:
    """CPU seconds of a process and its reaped children, plus its live children (a PostgreSQL
    server: the postmaster and its backends)."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int) -> tuple[int, list[str]]:
        text = Path(f"/proc/{p}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return int(fields[1]), fields  # ppid, fields from `state` on

    try:
        _, fields = stat(pid)
    except OSError:
        return 0.0
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid, child = stat(int(entry.name))
        except (OSError, ValueError):
            continue
        if ppid == pid:
            total += int(child[11]) + int(child[12])
    return total / tick


def _database(base_url: str, name: str) -> str:
    """A fresh database `name` on the server at `base_url` (dropped first if it exists)."""
    import psycopg2
    from sqlalchemy.engine import make_url

    base = make_url(base_url)
    con = psycopg2.connect(base.render_as_string(hide_password=False))
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
    return base.set(database=name).render_as_string(hide_password=False)


class Installation:
    """One installation (store + governed warehouse) with synthetic assets."""

    def __init__(self, root: Path, metadata_url: str | None, assets: int) -> None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        settings = replace(
            load_settings({}),
            home=root,
            sources_dir=root / "sources",
            dagster_home=root / "dagster_home",
            ledger_anchor_path=root / "ledger-anchors.jsonl",
            metadata_url=metadata_url,
            dagster_storage_url=None,
        )
        self.root = root
        self.settings = settings
        self.store: Warehouse = open_store(settings)
        self.wh = GovernedWarehouse(self.store, settings, IDENTITY)
        self.assets = [f"bench/a{i:04d}" for i in range(assets)]
        self.salt = 0
        self.con = duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")
        self.background = 0

    def close(self) -> None:
        self.con.close()

    def new_versions(self, assets: list[str]) -> tuple[dict[str, Version], float]:
        """A new tiny Parquet version of each asset (content unique to this call)."""
        self.salt += 1
        started = time.perf_counter()
        out = {}
        for i, asset in enumerate(assets):
            pending = self.store.versions.new_pending_path()
            sql = f"SELECT range AS id, {i} AS asset_no, {self.salt} AS salt FROM range(3)"
            self.con.execute(f"COPY ({sql}) TO {sql_literal(str(pending))} (FORMAT parquet)")
            out[asset] = self.store.versions.commit_file(
                self.con, asset, pending, environment="staging", run_id=f"bench-{self.salt}"
            )
        return out, time.perf_counter() - started

    def add_background_sandboxes(self, total: int) -> list[float]:
        """Register sandboxes up to `total` as create_sandbox does, minus the catalog file."""
        release = self.store.releases.current()
        seconds = []
        while self.background < total:
            name = f"bg_{self.background:03d}"

            def ledger(tx, name=name):
                self.store.ledger.append(
                    LedgerKind.SANDBOX_CREATED,
                    actor=IDENTITY.actor,
                    environment=name,
                    tx=tx,
                    params={"base_release": release.release_id, "owner": None},
                    assets=release.manifest,
                )

            elapsed, _ = _timed(
                lambda name=name, ledger=ledger: self.store.environments.create_sandbox(
                    name,
                    base_release=release.release_id,
                    pointers=release.manifest,
                    builds=release.builds,
                    on_commit=ledger,
                )
            )
            seconds.append(elapsed)
            self.background += 1
        return seconds

    def row_counts(self) -> dict[str, int]:
        with self.store.meta.read() as con:
            counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
            row = con.execute(
                "SELECT length(state_json) FROM ledger ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            counts["last_ledger_state_json_bytes"] = int(row[0]) if row and row[0] else 0
            if self.store.meta.dialect == "postgresql":
                size = con.execute("SELECT pg_database_size(current_database())").fetchone()[0]
                counts["database_bytes"] = int(size)
        if self.store.meta.path is not None:
            counts["database_bytes"] = sum(
                p.stat().st_size
                for p in self.store.meta.path.parent.glob(self.store.meta.path.name + "*")
            )
        return counts


def _measure_size(inst: Installation, environments: int, quick: bool) -> dict:
    from elt_platform.sandboxes.create import create_sandbox
    from elt_platform.sandboxes.prune import drop_sandbox

    n_pub, n_sb = _reps(len(inst.assets), quick)
    _CPU.clear()
    background = inst.add_background_sandboxes(environments)
    load_before = os.getloadavg()
    changed = inst.assets[:CHANGED]
    publish, repoint, commit = [], [], []
    for _ in range(n_pub):
        versions, commit_s = inst.new_versions(changed)
        commit.append(commit_s / len(changed))
        repoint.append(
            _timed(lambda v=versions: inst.wh.commit_pointers("staging", v, run_id="b"))[0]
        )
        elapsed, result = _timed(
            lambda: inst.wh.publish("staging", triggered_by="bench"), "publish"
        )
        assert result.changed and len(result.changed_assets) == len(changed), result
        publish.append(elapsed)
    releases = [r.release_id for r in inst.store.releases.list()[:2]]  # newest first
    rollback = []
    for i in range(n_pub if n_pub % 2 == 0 else n_pub + 1):  # even: prod ends on the newest
        target = releases[(i + 1) % 2]
        rollback.append(_timed(lambda t=target: inst.wh.rollback(t, actor="bench"), "rollback")[0])
    assert inst.store.releases.current().release_id == releases[0]
    parts = 3 if len(inst.assets) <= 100 else 1
    catalog = [
        _timed(lambda: inst.store.catalogs.rebuild(PROD), "catalog")[0] for _ in range(parts)
    ]
    snapshot = []
    for _ in range(parts):
        with inst.store.meta.read() as con:
            snapshot.append(_timed(lambda con=con: state_snapshot(con))[0])
    create, create_platform, drop = [], [], []
    for i in range(n_sb):
        name = f"m{environments:03d}_{i}"
        elapsed, made = _timed(
            lambda name=name: create_sandbox(inst.wh, name, ttl=None, actor="bench"), "create"
        )
        assert made.assets == len(inst.assets), made
        create.append(elapsed)
        create_platform.append(made.seconds)
        drop.append(_timed(lambda name=name: drop_sandbox(inst.store, name, actor="bench"))[0])
    return {
        "environments": environments,
        "assets": len(inst.assets),
        "publish": _stats(publish),
        "rollback": _stats(rollback),
        "create_sandbox": _stats(create),
        "create_sandbox_platform": _stats(create_platform),
        "drop_sandbox": _stats(drop),
        "repoint_staging": _stats(repoint),
        "version_commit_per_asset": _stats(commit),
        "prod_catalog_rebuild": _stats(catalog),
        "cpu_bench_process": {k: _stats(v) for k, v in _CPU.items()},
        "ledger_state_snapshot": _stats(snapshot),
        "background_sandbox_register": _stats(background[-5:]) if background else None,
        "rows": inst.row_counts(),
        "prod_catalog_bytes": inst.store.catalogs.path(PROD).stat().st_size,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def _measure_dagster(inst: Installation, quick: bool) -> dict:
    """create_sandbox as the UI runs it (with a Dagster instance): the environment partition plus
    one runless materialization per asset in Dagster's event log (on the same PostgreSQL
    database as the metadata store, or DAGSTER_HOME's SQLite files)."""
    from elt_platform.orchestration.instance import open_instance
    from elt_platform.sandboxes.create import create_sandbox
    from elt_platform.sandboxes.prune import drop_sandbox

    reps = 1 if quick or len(inst.assets) > 100 else 2
    instance = open_instance(inst.settings)
    total, tail = [], []
    try:
        for i in range(reps):
            name = f"dg_{i}"
            elapsed, made = _timed(
                lambda name=name: create_sandbox(
                    inst.wh, name, ttl=None, actor="bench", instance=instance
                )
            )
            total.append(elapsed)
            tail.append(elapsed - made.seconds)
            drop_sandbox(inst.store, name, actor="bench", instance=instance)
        events = None
        if inst.store.meta.dialect == "postgresql":
            with inst.store.meta.read() as con:
                events = con.execute("SELECT count(*) FROM event_logs").fetchone()[0]
    finally:
        instance.dispose()
    return {
        "create_sandbox_with_dagster": _stats(total),
        "dagster_part": _stats(tail),
        "event_log_rows": events,
    }


def _run_backend(
    backend: str, work: Path, base_url: str | None, quick: bool, sizes: tuple, envs: tuple
) -> list[dict]:
    out = []
    for assets in sizes:
        url = _database(base_url, f"scale_a{assets}") if base_url else None
        started, cpu = time.perf_counter(), _cpu_self()
        inst = Installation(work / f"{backend}_a{assets}", url, assets)
        try:
            versions, write_s = inst.new_versions(inst.assets)
            inst.wh.commit_pointers("staging", versions, run_id="bench-0")
            inst.wh.publish("staging", triggered_by="bench")
            setup_s = time.perf_counter() - started
            for environments in envs:
                measured = _measure_size(inst, environments, quick)
                measured.update(
                    backend=backend,
                    setup_seconds=round(setup_s, 2),
                    initial_version_commit_per_asset=round(write_s / assets, 5),
                )
                out.append(measured)
                print(
                    f"scale {backend} envs={environments} assets={assets}: "
                    f"publish {measured['publish']['median']:.3f} s, "
                    f"rollback {measured['rollback']['median']:.3f} s, "
                    f"create_sandbox {measured['create_sandbox']['median']:.3f} s "
                    f"({time.perf_counter() - started:.0f} s so far)",
                    file=sys.stderr,
                    flush=True,
                )
            out[-1]["dagster"] = _measure_dagster(inst, quick)
            print(
                f"scale {backend} assets={assets}: create_sandbox with Dagster "
                f"{out[-1]['dagster']['create_sandbox_with_dagster']['median']:.3f} s",
                file=sys.stderr,
                flush=True,
            )
        finally:
            inst.close()
        for m in out[-len(envs) :]:
            m["installation_wall_seconds"] = round(time.perf_counter() - started, 1)
            m["installation_cpu_seconds_bench_process"] = round(_cpu_self() - cpu, 1)
        if backend == "postgresql":
            from elt_platform.store.postgres import dispose_engines

            dispose_engines()
        shutil.rmtree(work / f"{backend}_a{assets}", ignore_errors=True)
    return out


def _entries(results: list[dict]) -> list[dict]:
    """scale.json entries: Postgres figures with the SQLite figure as baseline."""
    sqlite = {(r["environments"], r["assets"]): r for r in results if r["backend"] == "sqlite"}
    entries = []
    metrics = (
        ("publish", "median", "publish_p50"),
        ("publish", "p95", "publish_p95"),
        ("rollback", "median", "rollback_p50"),
        ("create_sandbox", "median", "create_sandbox_p50"),
        ("create_sandbox", "p95", "create_sandbox_p95"),
        ("ledger_state_snapshot", "median", "ledger_state_snapshot_p50"),
    )
    for r in results:
        if r["backend"] != "postgresql":
            continue
        base = sqlite.get((r["environments"], r["assets"]))
        rows = r["rows"]
        for key, stat, label in metrics:
            value = r[key][stat]
            baseline = base[key][stat] if base else None
            notes = (
                f"PostgreSQL control plane, {r['environments']} sandboxes + prod/staging, "
                f"{r['assets']} synthetic assets; n={r[key]['n']}; baseline = same on SQLite; "
                "ratio = Postgres / SQLite"
            )
            if label == "publish_p50":
                notes += (
                    f"; rows: env_pointers={rows['env_pointers']}, releases={rows['releases']}, "
                    f"release_entries={rows['release_entries']}, ledger={rows['ledger']}, "
                    f"last ledger state {rows['last_ledger_state_json_bytes']} B"
                )
            entries.append(
                {
                    "name": "scale",
                    "metric": f"{label}@e{r['environments']}/a{r['assets']}",
                    "value": value,
                    "unit": "s",
                    "baseline": baseline,
                    "ratio": round(value / baseline, 2) if baseline else None,
                    "notes": notes,
                }
            )
    if not entries:  # no PostgreSQL: report the SQLite figures alone
        for r in results:
            for key, stat, label in metrics:
                entries.append(
                    {
                        "name": "scale",
                        "metric": f"{label}@e{r['environments']}/a{r['assets']}",
                        "value": r[key][stat],
                        "unit": "s",
                        "baseline": None,
                        "ratio": None,
                        "notes": "SQLite only (no PostgreSQL on this machine)",
                    }
                )
    return entries


def _markdown(results: list[dict], meta: dict) -> str:
    lines = [
        "# scale: the control plane with 1-100 sandboxes and 10-1,000 assets",
        "",
        "Synthetic assets (one 3-row Parquet version each); times in seconds, median (p95) over n "
        "samples. `publish` = staging -> prod release after 10 assets were repointed in staging "
        "(ledger entry + prod catalog rebuild included); `create` = `create_sandbox` (pointers, "
        "ledger entry, experiment record, catalog of views); CPU = the bench process's CPU seconds "
        "for the same call, median (PostgreSQL's own CPU is in the total below). Re-run: "
        "`python -m elt_demo.bench --only scale`.",
        "",
        f"Machine: {meta['cpus']} cores, shared; load average {meta['load_start']} at start, "
        f"{meta['load_end']} at end. Wall {meta['wall_seconds']} s; CPU: bench process "
        f"{meta['cpu_bench_process']} s, PostgreSQL server {meta['cpu_postgres_server']} s. "
        "Wall times include waiting for the CPU on a shared machine.",
        "",
        "| backend | sandboxes | assets | publish | rollback | create sandbox | drop sandbox "
        "| prod catalog rebuild | ledger state snapshot | repoint 10 assets "
        "| env_pointers | release_entries | ledger rows | ledger state B | db size "
        "| prod catalog file | CPU publish | CPU create |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(s: dict) -> str:
        return f"{s['median']:.3f} ({s['p95']:.3f}, n={s['n']})"

    for r in sorted(results, key=lambda r: (r["backend"], r["assets"], r["environments"])):
        rows = r["rows"]
        lines.append(
            f"| {r['backend']} | {r['environments']} | {r['assets']} | {cell(r['publish'])} "
            f"| {cell(r['rollback'])} | {cell(r['create_sandbox'])} | {cell(r['drop_sandbox'])} "
            f"| {r['prod_catalog_rebuild']['median']:.3f} "
            f"| {r['ledger_state_snapshot']['median']:.3f} "
            f"| {r['repoint_staging']['median']:.3f} | {rows['env_pointers']:,} "
            f"| {rows['release_entries']:,} | {rows['ledger']:,} "
            f"| {rows['last_ledger_state_json_bytes']:,} "
            f"| {rows.get('database_bytes', 0) / 1e6:.1f} MB "
            f"| {r['prod_catalog_bytes'] / 1e3:.0f} kB "
            f"| {r['cpu_bench_process']['publish']['median']:.3f} "
            f"| {r['cpu_bench_process']['create']['median']:.3f} |"
        )
    lines += [
        "",
        "create_sandbox as the UI runs it (with a Dagster instance: partition + one runless "
        "materialization per asset), at the largest sandbox count, median (p95, n); the Dagster "
        "part alone; Dagster event-log rows in the database afterwards (PostgreSQL):",
        "",
        "| backend | assets | create with Dagster | Dagster part | event_logs rows |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        d = r.get("dagster")
        if d:
            lines.append(
                f"| {r['backend']} | {r['assets']} | {cell(d['create_sandbox_with_dagster'])} "
                f"| {cell(d['dagster_part'])} | {d['event_log_rows'] or '-'} |"
            )
    lines += [
        "",
        "Version commit (one tiny Parquet file: write, content hash, version + build rows), "
        "seconds per asset, median:",
        "",
    ]
    for r in results:
        if r["environments"] == ENVIRONMENTS[0] or r is results[0]:
            lines.append(
                f"- {r['backend']} at {r['assets']} assets: "
                f"{r['initial_version_commit_per_asset']:.4f}"
            )
    return "\n".join(lines) + "\n"


def run(
    results_dir: Path,
    quick: bool = False,
    sizes: tuple[int, ...] = ASSETS,
    environments: tuple[int, ...] = ENVIRONMENTS,
    postgres_url: str | None = None,
) -> list[dict]:
    work = results_dir.parent / "work" / "scale"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if quick:
        sizes, environments = (10, 100), (1, 10)
    url = postgres_url or next((os.environ[v] for v in URL_VARS if os.environ.get(v)), None)
    started, cpu = time.perf_counter(), _cpu_self()
    load_start = [round(x, 2) for x in os.getloadavg()]
    results: list[dict] = []
    pg_cpu: float | str = "n/a (server not started here)"
    # Outside the checkout (as root the server's folder is handed to the `postgres` user).
    server_root = Path(tempfile.mkdtemp(prefix="elt-bench-postgres."))
    service = None
    try:
        if url is None:
            try:
                service = services.up(server_root)
                url = service.url
                print(f"scale: PostgreSQL pid {service.pid} at {url}", file=sys.stderr)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                print(f"scale: no PostgreSQL ({exc}); SQLite only", file=sys.stderr)
        if url is not None:
            pg_cpu_before = _proc_cpu(service.pid) if service else 0.0
            results += _run_backend("postgresql", work, url, quick, sizes, environments)
            if service:
                pg_cpu = round(_proc_cpu(service.pid) - pg_cpu_before, 1)
        results += _run_backend("sqlite", work, None, quick, sizes, environments)
    finally:
        if service is not None:
            services.down(server_root)  # by PID, also when a measurement failed
        shutil.rmtree(server_root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    meta = {
        "cpus": os.cpu_count(),
        "load_start": load_start,
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_bench_process": round(_cpu_self() - cpu, 1),
        "cpu_postgres_server": pg_cpu,
        "quick": quick,
    }
    (results_dir / "scale_raw.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1)
    )
    (results_dir / "scale.md").write_text(_markdown(results, meta))
    entries = _entries(results)
    entries.append(
        {
            "name": "scale",
            "metric": "run",
            "value": meta["wall_seconds"],
            "unit": "s",
            "baseline": None,
            "ratio": None,
            "notes": (
                f"wall of the whole suite; CPU: bench {meta['cpu_bench_process']} s, PostgreSQL "
                f"{meta['cpu_postgres_server']} s; load average {load_start} -> "
                f"{meta['load_end']} ({meta['cpus']} cores, shared)"
            ),
        }
    )
    return entries
