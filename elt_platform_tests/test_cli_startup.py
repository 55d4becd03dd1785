"""Commands that run no job import neither Dagster nor dbt (each costs seconds of start-up), and
the Dagster-free planning they use sees the same asset graph as the Definitions."""

from __future__ import annotations

import json
import subprocess
import sys

from elt_platform.launch.runs import load_definitions
from elt_platform.project.asset_graph import project_assets
from elt_platform_tests.conftest import cli_env

HEAVY = ("dagster", "dagster_dbt", "dbt")
PROBE = """
import json, sys
from elt_platform.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = exc.code or 0
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print("PROBE " + json.dumps({"code": code, "loaded": loaded}))
""".replace("HEAVY", repr(HEAVY))


def _probe(settings, *args: str) -> tuple[dict, str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PROBE ")]
    assert lines, f"elt {' '.join(args)} crashed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1][len("PROBE ") :]), proc.stdout


def test_commands_that_run_no_job_import_neither_dagster_nor_dbt(platform_home):
    commands = [
        ("--help",),
        ("env", "list"),
        ("releases",),
        ("sql", "prod", "select count(*) as n from orders"),
        ("sandbox", "create", "startup_probe", "--ttl", "1d"),
        ("sandbox", "list"),
        ("sandbox", "show", "startup_probe"),
        ("sandbox", "plan", "startup_probe"),
        ("sandbox", "build", "startup_probe"),  # nothing changed: no run to launch
        ("diff", "startup_probe"),  # nothing differs: nothing to report to Dagster
        ("build", "staging", "--plan"),
    ]
    outputs = {}
    for args in commands:
        found, stdout = _probe(platform_home, *args)
        assert found["code"] == 0, f"elt {' '.join(args)} exited {found['code']}:\n{stdout}"
        assert found["loaded"] == [], f"elt {' '.join(args)} imported {found['loaded']}"
        outputs[args[:2]] = stdout
    assert (
        "reuse" in outputs[("sandbox", "plan")] and "recompute" not in outputs[("sandbox", "plan")]
    )
    assert "nothing to rebuild" in outputs[("sandbox", "build")]


def test_planning_without_dagster_sees_the_definitions_asset_graph(platform_home):
    graph = load_definitions(platform_home).resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.materializable_asset_keys)
    assert keys, "the demo project defines assets"
    assets = project_assets(platform_home)
    assert assets.keys == keys
    for key in graph.materializable_asset_keys:
        name = key.to_user_string()
        parents = sorted(p.to_user_string() for p in graph.get(key).parent_keys)
        assert sorted(assets.deps[name]) == parents, name
        assert assets.code_versions[name] == graph.get(key).code_version, name
