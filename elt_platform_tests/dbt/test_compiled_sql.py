"""Lineage takes each model's compiled SQL from the dbt run that compiled it; `dbt compile` runs
only for a model whose SQL (or what it reads) changed since any run or compile covered it."""

from __future__ import annotations

import json
import shutil

from elt_platform.project.compiled_sql import compiled_sql, remember_compiled
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.settings import REPO_ROOT
from elt_platform_tests.conftest import make_settings

EDITED = "models/marts/daily_revenue.sql"


def test_compiled_sql_comes_from_the_run_and_is_compiled_again_only_when_stale(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(
        REPO_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs")
    )
    cfg = load_dbt_project(make_settings(tmp_path / "home", ELT_PROJECT_DIR=str(project)))
    manifest = json.loads(prepare_manifest(cfg).read_text())
    models = [u for u, n in manifest["nodes"].items() if n["resource_type"] == "model"]
    assert models, "the demo project has models"
    # What a run leaves in its target folder: the compiled SQL of every node it ran.
    for uid in models:
        manifest["nodes"][uid]["compiled_code"] = f"select 1 as from_the_run -- {uid}"
    run_manifest = tmp_path / "run_target" / "manifest.json"
    run_manifest.parent.mkdir()
    run_manifest.write_text(json.dumps(manifest))

    assert remember_compiled(cfg, run_manifest) == len(models)
    found = compiled_sql(cfg)
    assert found == {uid: f"select 1 as from_the_run -- {uid}" for uid in models}

    path = project / EDITED
    path.write_text(path.read_text().replace("count(*) as order_count", "count(1) as order_count"))
    again = compiled_sql(cfg)  # the edited model is stale: dbt compiles the project once
    edited = next(u for u in models if u.endswith(".daily_revenue"))
    assert "count(1) as order_count" in again[edited]
    assert "from_the_run" not in again[edited]
