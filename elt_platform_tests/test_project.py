"""A team's own dbt project: `elt init` writes the optional project file and lists what governance
is missing, `elt new source` scaffolds an extracted table, the code version is the project's, and
bad project input is one line with exit 2."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from elt_platform.project.code_version import current_code_version
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest, render_profiles
from elt_platform.settings import load_settings

FIXTURE = Path(__file__).parent / "fixtures" / "projects" / "shop_analytics"


def _copy(tmp_path: Path, name: str = "shop_analytics") -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("target", "logs"))
    return target


def _elt(tmp_path: Path, *args: str, cwd: Path | None = None, **env: str):
    environ = {
        **{k: v for k, v in __import__("os").environ.items() if not k.startswith("ELT_")},
        "ELT_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "home" / "dagster_home"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "elt_platform", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=600,
    )


def _fill(path: Path) -> None:
    """What a team does with the TODOs `elt init` wrote."""
    text = path.read_text()
    text = text.replace("owner: null", "owner: team:bikes", 1)
    text = text.replace("retention: null", "retention: 400d", 1)
    text = text.replace("sensitivity: null", "sensitivity: internal", 1)
    text = text.replace("description: null", "description: One row per record.")
    text = re.sub(
        r"retention_column: null[^\n]*\n(\s+)reason: null[^\n]*",
        r"retention_column: none\n\1reason: reference data",
        text,
    )
    path.write_text(text.replace("strict: false", "strict: true"))


def test_init_writes_a_project_file_that_once_filled_makes_a_strict_policy_pass(tmp_path):
    project = _copy(tmp_path)
    before = sorted(p.relative_to(project) for p in project.rglob("*") if "target" not in p.parts)
    proc = _elt(tmp_path, "init", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = project / "elt_project.yml"
    assert f"wrote {written}" in proc.stdout
    assert "14 assets without owner" in proc.stdout
    assert "looks like personal data: dim_riders: full_name, email" in proc.stdout
    # Only the project file was added (dbt's own target/ aside): the team's files are untouched.
    after = sorted(p.relative_to(project) for p in project.rglob("*") if "target" not in p.parts)
    assert sorted(set(after) - set(before)) == [Path("elt_project.yml")]
    again = _elt(tmp_path, "init", cwd=project)
    assert again.returncode == 2 and "already exists" in again.stderr

    strict = written.read_text().replace("strict: false", "strict: true")
    (tmp_path / "strict.yml").write_text(strict)
    unfilled = _elt(
        tmp_path,
        "governance",
        "check",
        ELT_PROJECT_DIR=str(project),
        ELT_PROJECT_FILE=str(tmp_path / "strict.yml"),
    )
    assert unfilled.returncode == 1 and "dim_riders: no owner" in unfilled.stdout
    _fill(written)
    filled = _elt(tmp_path, "governance", "check", ELT_PROJECT_DIR=str(project))
    assert filled.returncode == 0, filled.stdout + filled.stderr
    assert re.search(r"compliant: 14 assets, \d+ columns, 4 roles checked", filled.stdout)
    # The personal data it flagged is now declared PII, so sandboxes mask it.
    settings = load_settings({"ELT_PROJECT_DIR": str(project), "ELT_HOME": str(tmp_path)})
    assert contracts_for(settings)["dim_riders"].column("email").sensitivity == "pii"


def test_new_source_scaffolds_its_connector_dbt_yaml_and_staging_model(tmp_path):
    project = _copy(tmp_path)
    landing = tmp_path / "landing"
    (landing / "bikes").mkdir(parents=True)
    duckdb.sql(
        "COPY (SELECT range AS bike_id, 'city' AS model, DATE '2024-01-01' AS bought_on "
        f"FROM range(5)) TO '{landing}/bikes/bikes-1.parquet'"
    )
    proc = _elt(
        tmp_path,
        "new",
        "source",
        "bikes",
        "--connector",
        "files",
        "--path",
        "bikes/*.parquet",
        "--primary-key",
        "bike_id",
        cwd=project,
        ELT_SOURCES_DIR=str(landing),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 columns discovered" in proc.stdout
    model = (project / "models" / "staging" / "stg_bikes.sql").read_text()
    assert "bike_id,\n    model,\n    bought_on\nfrom {{ source('raw', 'bikes') }}" in model
    settings = load_settings(
        {
            "ELT_PROJECT_DIR": str(project),
            "ELT_HOME": str(tmp_path),
            "ELT_SOURCES_DIR": str(landing),
        }
    )
    prepare_manifest(load_dbt_project(settings))
    raw = contracts_for(settings)["raw/bikes"]
    assert raw.primary_key == ["bike_id"] and raw.column("bought_on").type == "date"
    again = _elt(tmp_path, "new", "source", "bikes", "--connector", "files", cwd=project)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_the_code_version_is_the_projects_own(tmp_path):
    one, two = _copy(tmp_path, "one"), _copy(tmp_path, "two")
    assert current_code_version(one).label == current_code_version(two).label  # same content
    assert current_code_version(one).label.startswith("content.")  # not a git checkout
    sql = two / "models" / "marts" / "dim_stations.sql"
    sql.write_text(sql.read_text() + "\n-- a change\n")
    assert current_code_version(one).label != current_code_version(two).label
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=one, check=True)
    subprocess.run([*git, "add", "-A"], cwd=one, check=True)
    subprocess.run([*git, "commit", "-qm", "first"], cwd=one, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=one, capture_output=True, text=True)
    assert current_code_version(one).label == head.stdout.strip()[:12]
    (one / "models" / "marts" / "dim_stations.sql").write_text(sql.read_text())
    assert current_code_version(one).label.startswith(head.stdout.strip()[:12] + "+dirty.")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: shutil.rmtree(p), "no dbt project at"),
        (lambda p: (p / "dbt_project.yml").unlink(), "no dbt project at"),
        (
            lambda p: (p / "elt_project.yml").write_text("promotion: {keep_releases: 0}\n"),
            "elt_project.yml:1: promotion.keep_releases: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_project_input_is_one_line_and_exit_2(tmp_path, setup, message):
    project = _copy(tmp_path)
    setup(project)
    proc = _elt(tmp_path, "build", "staging", ELT_PROJECT_DIR=str(project))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "home" / "warehouse" / "versions").exists()  # nothing written


def test_the_duckdb_memory_limit_reaches_the_platforms_connections_and_dbts_profile(tmp_path):
    settings = load_settings(
        {"ELT_HOME": str(tmp_path / "home"), "ELT_DUCKDB_MEMORY_LIMIT": "64MB"}
    )
    assert load_settings(settings.to_environ()) == settings
    first, second = settings.duckdb_config(), settings.duckdb_config()
    assert first["temp_directory"] != second["temp_directory"]  # one spill folder each
    con = duckdb.connect(config=first)
    try:
        expected = duckdb.connect(config={"memory_limit": "64MB"})
        limit = "SELECT current_setting('memory_limit')"
        assert con.execute(limit).fetchone() == expected.execute(limit).fetchone()
        expected.close()
        # A sort larger than the limit completes by spilling under the platform's home.
        sorted_rows = con.execute(
            "SELECT count(*) FROM (SELECT md5(i::VARCHAR) AS m FROM range(3000000) t(i) ORDER BY m)"
        ).fetchone()[0]
        assert sorted_rows == 3_000_000
        assert Path(first["temp_directory"]).parent == settings.duckdb_spill_dir
    finally:
        con.close()
    assert not Path(first["temp_directory"]).exists()  # DuckDB removes its folder on close
    profile = load_dbt_project(settings)
    assert "memory_limit: 64MB" in render_profiles(profile)
