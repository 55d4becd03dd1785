"""Child process of the experiment-loop benchmark: one code tree, one data size.

Run as a script with one code tree on PYTHONPATH; it uses only APIs every compared tree has.
Set-up (not measured): staging built from the landing data and promoted. Then each step of the
analyst's loop runs as the `elt` command a person would type (a fresh process: start-up counts),
timed in wall and CPU (the process and its children, i.e. dbt). The plain-dbt baseline runs the
same edit on a copy of staging's dbt database right before the sandbox plan + build.
Arguments: code root, dbt project to copy, landing folder, work folder, edited model name,
edits as JSON ([[path in the project, old text, new text], ...]).
With ELT_BENCH_WARM=1 the loop runs with a warm process (`elt warm start`, after the set-up):
the commands go through the `elt` entry point, and a step's CPU adds what the warm process's
children (the command and its dbt) used, read from the warm process's /proc stat.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ELT = "import sys; from elt_platform.cli import main; main(sys.argv[1:])"
ELT_ENTRY = "from elt_platform.warm.entry import main; main()"
WARM_PID: list[int] = []  # the warm process, when the loop runs warm


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    for pid in WARM_PID:  # cutime + cstime: the children it forked and reaped
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return cpu


def _timed(cmd: list[str], cwd: Path, env: dict) -> dict:
    started, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return {"wall": round(wall, 3), "cpu": round(cpu, 3), "stdout": proc.stdout}


def main() -> None:
    code, project_src, sources, work, name, edits = sys.argv[1:7]
    import elt_platform

    assert elt_platform.__file__.startswith(code), (elt_platform.__file__, code)
    from elt_demo.api import serving_demo_api
    from elt_platform.launch import runs
    from elt_platform.settings import load_settings

    work = Path(work)
    project = work / "dbt_project"
    shutil.copytree(project_src, project, ignore=shutil.ignore_patterns("target", "logs"))
    home = work / "home"
    environ = {
        "ELT_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "ELT_SOURCES_DIR": sources,
        "ELT_DBT_PROJECT_DIR": str(project),
    }
    settings = load_settings(environ)
    steps: dict[str, dict] = {}
    with serving_demo_api(Path(sources)):
        env = {**os.environ, **environ, "PYTHONPATH": code, "COLUMNS": "200"}
        warm = os.environ.get("ELT_BENCH_WARM") == "1"
        env["ELT_WARM_SOCKET"] = str(work / "warm" / "elt.sock")
        entry = ELT_ENTRY if warm else ELT

        def elt(step: str, *args: str) -> dict:
            steps[step] = _timed([sys.executable, "-c", entry, *args], work, env)
            return steps[step]

        first = runs.build_environment(settings, "staging")
        assert first.success, first.error
        promoted = runs.promote_via_sensor(settings, actor="bench")
        assert promoted.success, promoted.reason
        runs.load_definitions.cache_clear()
        if warm:
            (work / "warm").mkdir(mode=0o700)
            _timed([sys.executable, "-c", ELT, "warm", "start"], work, env)
            status = subprocess.run(
                [sys.executable, "-c", ELT, "warm", "status"],
                env=env, cwd=work, capture_output=True, text=True, check=True,
            )  # fmt: skip
            WARM_PID.append(int(status.stdout.split()[2]))

        # Commands that run no job (target 2).
        elt("help", "--help")
        elt("env_list", "env", "list")
        elt("releases", "releases")
        elt("sql", "sql", "prod", "select count(*) from orders")
        elt("create", "sandbox", "create", "exp", "--ttl", "1d")
        elt("sandbox_list", "sandbox", "list")
        elt("sandbox_show", "sandbox", "show", "exp")
        elt("sandbox_plan_nochange", "sandbox", "plan", "exp")
        elt("sandbox_build_nochange", "sandbox", "build", "exp")  # target 3

        # Plain dbt on a copy of staging's dbt database: warm partial parse first (not measured).
        plain = work / "plain"
        plain.mkdir()
        shutil.copy(home / "warehouse" / "work" / "staging" / "dbt.duckdb", plain / "dbt.duckdb")
        profile = yaml.safe_load((project / "dbt_project.yml").read_text())["profile"]
        (plain / "profiles.yml").write_text(
            yaml.safe_dump(
                {profile: {"target": "plain", "outputs": {"plain": {
                    "type": "duckdb", "path": str(plain / "dbt.duckdb"), "threads": 2}}}}
            )
        )  # fmt: skip
        dbt = [
            str(Path(sys.executable).parent / "dbt"),
            "--no-send-anonymous-usage-stats",
            "--project-dir", str(project),
            "--profiles-dir", str(plain),
            "--target-path", str(plain / "target"),
            "--log-path", str(plain / "logs"),
        ]  # fmt: skip
        _timed([dbt[0], "parse", *dbt[1:]], project, env)

        for path, old, new in json.loads(edits):
            text = (project / path).read_text()
            assert old in text, f"{path} lacks the edit's anchor"
            (project / path).write_text(text.replace(old, new, 1))
        steps["plain_dbt"] = _timed(
            [dbt[0], "build", *dbt[1:], "--select", f"{name}+"], project, env
        )
        plan = elt("plan", "sandbox", "plan", "exp")
        elt("build", "sandbox", "build", "exp")
        elt("diff", "diff", "exp")
        elt("staging", "build", "staging")
        elt("staging_nochange", "build", "staging")
        elt("promote", "promote")
        if warm:
            WARM_PID.clear()
            subprocess.run([sys.executable, "-c", ELT, "warm", "stop"], env=env, check=True)
    recompute = [line for line in plan["stdout"].splitlines() if " recompute " in line]
    for step in steps.values():
        step.pop("stdout", None)
    result = {
        "steps": steps,
        "plan_recompute": len(recompute),
        "plan_lines": [" ".join(line.split()) for line in recompute],
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
