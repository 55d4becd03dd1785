"""The analyst cycle on a real installation: a model edited on disk (behind a feature flag and a
dbt var) is rebuilt in a sandbox with its downstream only, never in prod; the diff, the record and
a reproduction follow; and a sandbox can never write prod or another environment."""

from __future__ import annotations

import hashlib
import json

import dagster as dg
import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.errors import EnvironmentBusy, WriteNotAllowed
from elt_platform.launch.runs import build_environment
from elt_platform.orchestration.instance import open_instance
from elt_platform.project.code_version import current_code_version
from elt_platform.sandboxes.create import create_sandbox
from elt_platform.sandboxes.experiment import ExperimentStore
from elt_platform.settings import Settings
from elt_platform.store.locks import EnvironmentLocks
from elt_platform_tests.conftest import cli_env, edit_yaml, run_cli
from elt_platform_tests.sandboxes.conftest import copy_dbt_project

SANDBOX = "bulk_exp"
EDITED = "int_orders_enriched"
DOWNSTREAM = {"customers", "orders", "daily_revenue"}
FLAG_EDIT = (
    "    orders.updated_at{% if var('experimental_bulk_flag', false) %},\n"
    "    orders.quantity >= {{ var('bulk_threshold', 5) }} as is_bulk_order{% endif %}\n"
    "from orders"
)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def edited(sandbox_home, tmp_path_factory):
    """A second copy of the dbt project with one model edited, a config file turning its flag on
    for sandboxes, and the sandbox built through the CLI as an analyst would."""
    root = tmp_path_factory.mktemp("edited")
    project = copy_dbt_project(root / "dbt_project")
    model = project / "models" / "intermediate" / f"{EDITED}.sql"
    text = model.read_text()
    assert "    orders.updated_at\nfrom orders" in text
    model.write_text(text.replace("    orders.updated_at\nfrom orders", FLAG_EDIT))
    edit_yaml(
        project / "elt_project.yml",
        lambda d: d["environments"].update(sandboxes={"flags": {"experimental_bulk_flag": True}}),
    )
    env = {**cli_env(sandbox_home), "ELT_PROJECT_DIR": str(project)}
    wh = open_warehouse(sandbox_home)
    create_sandbox(open_warehouse(sandbox_home), "bystander")
    before = {
        "pointers": {e: wh.environments.pointers(e) for e in ("prod", "staging", "bystander")},
        "catalogs": {e: _digest(wh.catalogs.ensure_fresh(e)) for e in ("prod", "bystander")},
        "release": wh.releases.current().release_id,
    }
    run_cli(
        sandbox_home,
        "sandbox",
        "create",
        SANDBOX,
        "--var",
        "bulk_threshold=8",
        "--owner",
        "ana@example.com",
        env=env,
        check=True,
    )
    build = run_cli(sandbox_home, "sandbox", "build", SANDBOX, env=env, check=True)
    return {"env": env, "project": project, "before": before, "build": build}


def test_only_the_edited_model_and_its_downstream_are_rebuilt(sandbox_home, edited):
    wh = open_warehouse(sandbox_home)
    release = wh.releases.get(edited["before"]["release"])
    pointers = wh.environments.pointers(SANDBOX)
    changed = {a for a, v in pointers.items() if release.manifest.get(a) != v}
    # int gains a column; customers is recomputed from masked inputs; orders and daily_revenue
    # are recomputed too but come out identical, so they resolve to the release's versions.
    assert changed == {EDITED, "customers"}
    runs = ExperimentStore(wh.root, wh.meta).get(SANDBOX)["runs"]
    assert len(runs) == 1 and set(runs[0]["rebuilt"]) == {EDITED, *DOWNSTREAM}
    for asset in ("raw/orders", "stg_orders", "stg_customers", "stg_payments"):
        assert pointers[asset] == release.manifest[asset], asset
    output = edited["build"].stdout
    assert "code changed" in output and f"upstream {EDITED} is rebuilt" in output


def test_prod_staging_and_other_sandboxes_are_unchanged(sandbox_home, edited):
    wh = open_warehouse(sandbox_home)
    before = edited["before"]
    assert before["pointers"], "nothing to check"
    for env, pointers in before["pointers"].items():
        assert wh.environments.pointers(env) == pointers, env
    assert before["catalogs"], "nothing to check"
    for env, digest in before["catalogs"].items():
        assert _digest(wh.catalogs.path(env)) == digest, env
    assert wh.releases.current().release_id == before["release"]


def test_flags_and_vars_reach_dbt_and_show_in_tags_metadata_and_versions(sandbox_home, edited):
    wh = open_warehouse(sandbox_home)
    build = wh.builds.get(wh.environments.pointer_builds(SANDBOX)[EDITED])
    params = build.params
    assert build.masked and build.environment == SANDBOX
    assert params["vars"] == {"bulk_threshold": 8, "experimental_bulk_flag": True}
    con = wh.catalogs.connect(SANDBOX)
    try:
        wrong = con.execute(
            f"SELECT count(*) FROM main.{EDITED} WHERE is_bulk_order <> (quantity >= 8)"
        ).fetchone()[0]
        bulk = con.execute(f"SELECT count(*) FROM main.{EDITED} WHERE is_bulk_order").fetchone()
    finally:
        con.close()
    assert wrong == 0 and bulk[0] > 0
    instance = open_instance(sandbox_home)
    event = instance.get_latest_materialization_event(dg.AssetKey(EDITED))
    run = instance.get_run_by_id(event.run_id)
    assert json.loads(run.tags["elt/flags"]) == {"experimental_bulk_flag": True}
    assert json.loads(run.tags["elt/vars"]) == {"bulk_threshold": 8}
    metadata = event.asset_materialization.metadata
    assert event.asset_materialization.partition == SANDBOX
    assert metadata["environment_config"].value["vars"] == {"bulk_threshold": 8}
    assert metadata["rebuild_reason"].value == "code changed"
    assert metadata["diff_vs_release"].value["schema_added"] == ["is_bulk_order"]
    # customers was recomputed on masked inputs; compared masked-to-masked it has not changed
    customers = instance.get_latest_materialization_event(dg.AssetKey("customers"))
    assert customers.run_id == event.run_id
    summary = customers.asset_materialization.metadata["diff_vs_release"].value
    assert (summary["added"], summary["removed"], summary["changed"]) == (0, 0, 0)


def test_the_sandbox_materialization_shows_its_diff_against_prod_and_masked_column_tags(
    sandbox_home, edited
):
    wh = open_warehouse(sandbox_home)
    release = wh.releases.current().release_id
    instance = open_instance(sandbox_home)
    event = instance.get_latest_materialization_event(dg.AssetKey(EDITED))
    assert event.asset_materialization.partition == SANDBOX
    metadata = event.asset_materialization.metadata
    text = metadata["diff_vs_prod"].value  # markdown, rendered by the UI
    assert text.startswith(f"### {EDITED}: {SANDBOX} vs prod (release {release})")
    assert "| is_bulk_order | added (BOOLEAN) |" in text
    assert "| added | 0 |" in text and "| removed | 0 |" in text
    # Columns table: sensitivity and masking as column tags, column lineage beside it.
    customers = instance.get_latest_materialization_event(dg.AssetKey("customers"))
    schema = customers.asset_materialization.metadata["dagster/column_schema"].value
    tags = {c.name: c.tags for c in schema.columns}
    assert tags, "no columns"
    assert tags["email"]["sensitivity"] == "pii" and tags["email"]["masked"] == "in this sandbox"
    assert tags["customer_id"]["sensitivity"] == "internal"
    lineage = customers.asset_materialization.metadata["dagster/column_lineage"].value
    email_deps = {
        (d.asset_key.to_user_string(), d.column_name) for d in lineage.deps_by_column["email"]
    }
    assert ("stg_customers", "email") in email_deps


def test_sandbox_models_compute_on_masked_inputs(sandbox_home, edited):
    wh = open_warehouse(sandbox_home)
    prod = wh.catalogs.connect("prod")
    try:
        raw_emails = {r[0] for r in prod.execute("SELECT email FROM raw.customers").fetchall()}
    finally:
        prod.close()
    built = wh.versions.get("customers", wh.environments.pointers(SANDBOX)["customers"])
    scratch = duckdb.connect(str(wh.scratch_path(SANDBOX)), read_only=True)
    try:
        mounted = {r[0] for r in scratch.execute("SELECT email FROM raw.customers").fetchall()}
        stored = {r[0] for r in scratch.execute(f"SELECT email FROM {built.scan_sql}").fetchall()}
    finally:
        scratch.close()
    assert len(mounted) == len(raw_emails) and not mounted & raw_emails
    assert len(stored) == len(raw_emails) and not stored & raw_emails


def test_diff_reports_the_schema_change_and_is_recorded_on_the_sandbox(sandbox_home, edited):
    proc = run_cli(sandbox_home, "diff", SANDBOX, "--json", env=edited["env"], check=True)
    tables = {t["asset"]: t for t in json.loads(proc.stdout)}
    assert tables[EDITED]["schema"]["added"] == [["is_bulk_order", "BOOLEAN"]]
    assert tables[EDITED]["key"] == ["order_id"]
    assert (tables[EDITED]["added"], tables[EDITED]["removed"]) == (0, 0)
    # Read masked on both sides, the recomputed customers mart has the same rows as prod's.
    assert (tables["customers"]["added"], tables["customers"]["changed"]) == (0, 0)
    assert tables["orders"]["mode"] == "identical"
    wh = open_warehouse(sandbox_home)
    record = ExperimentStore(wh.root, wh.meta).get(SANDBOX)
    assert record["diffs"][f"prod..{SANDBOX}"][EDITED]["schema_added"] == ["is_bulk_order"]
    instance = open_instance(sandbox_home)
    observations = instance.fetch_observations(dg.AssetKey(EDITED), limit=5).records
    recorded = [o.asset_observation for o in observations]
    assert any(o.partition == SANDBOX and "diff" in o.metadata for o in recorded)
    markdown = next(
        o.metadata["diff_markdown"].value for o in recorded if "diff_markdown" in o.metadata
    )
    assert "| is_bulk_order | added (BOOLEAN) |" in markdown


def test_experiment_record_holds_what_reproduction_needs(sandbox_home, edited):
    wh = open_warehouse(sandbox_home)
    record = ExperimentStore(wh.root, wh.meta).get(SANDBOX)
    assert record["source_release"] == edited["before"]["release"]
    assert record["config"] == {
        "flags": {"experimental_bulk_flag": True},
        "vars": {"bulk_threshold": 8},
    }
    assert record["config_overrides"]["vars"] == {"bulk_threshold": 8}
    # The project's own code version (a content hash here: the copy is not a git checkout).
    code = current_code_version(edited["project"])
    assert record["code_version"]["label"] == code.label and "models" in record["code_version"]
    assert record["seed"] == 7 and record["owner"] == "ana@example.com"
    assert record["outputs"] == {
        a: v
        for a, v in wh.environments.pointers(SANDBOX).items()
        if record["input_versions"].get(a) != v
    }
    assert record["checks"][EDITED]["failed"] == 0 and record["checks"][EDITED]["passed"] > 0
    assert record["diff_summary"][EDITED]["schema_added"] == ["is_bulk_order"]
    on_disk = json.loads(ExperimentStore(wh.root, wh.meta).path(SANDBOX).read_text())
    assert on_disk["outputs"] == record["outputs"]


def test_reproduce_recreates_identical_content_hashes(sandbox_home, edited):
    proc = run_cli(
        sandbox_home, "sandbox", "reproduce", SANDBOX, "--as", "bulk_exp_again", env=edited["env"]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reproduces bulk_exp" in proc.stdout
    wh = open_warehouse(sandbox_home)
    original = ExperimentStore(wh.root, wh.meta).get(SANDBOX)["outputs"]
    again = wh.environments.pointers("bulk_exp_again")
    assert original and all(again[a] == v for a, v in original.items())


def test_reproduce_with_another_masking_key_reports_the_mismatch(sandbox_home, edited):
    env = {**edited["env"], "ELT_MASKING_KEY": "a-different-secret"}
    proc = run_cli(
        sandbox_home, "sandbox", "reproduce", SANDBOX, "--as", "bulk_exp_other_key", env=env
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "masking key differs" in proc.stdout and "differs" in proc.stdout
    assert "a-different-secret" not in proc.stdout + proc.stderr


def test_a_sandbox_run_cannot_write_prod_or_another_environment(sandbox_home, edited):
    wh = open_warehouse(sandbox_home)
    snapshot = {r.name: wh.environments.pointers(r.name) for r in wh.environments.list()}
    with pytest.raises(WriteNotAllowed):
        wh.environments.set_pointers("prod", {EDITED: "0" * 16}, run_id="x")
    runs = len(open_instance(sandbox_home).get_run_records())
    with pytest.raises(WriteNotAllowed, match="cannot be materialized directly in 'prod'"):
        build_environment(sandbox_home, "prod", selection=[EDITED])
    assert len(open_instance(sandbox_home).get_run_records()) == runs  # refused before a run
    holder = EnvironmentLocks(wh.root / "locks")
    holder.acquire(SANDBOX, holder="run in progress")
    try:
        with pytest.raises(EnvironmentBusy):
            build_environment(sandbox_home, SANDBOX, selection=[EDITED])
    finally:
        holder.release_all()
    assert {r.name: wh.environments.pointers(r.name) for r in wh.environments.list()} == snapshot


def test_settings_point_at_the_pristine_project(sandbox_home: Settings, edited):
    # The edit lives only in the copy the CLI used; the installation's own project is untouched.
    model = sandbox_home.dbt_project_dir / "models" / "intermediate" / f"{EDITED}.sql"
    assert "is_bulk_order" not in model.read_text()
    assert (
        "is_bulk_order"
        in (edited["project"] / "models" / "intermediate" / f"{EDITED}.sql").read_text()
    )


def test_a_full_build_from_the_ui_path_recomputes_nothing_unchanged(sandbox_home, edited):
    """`elt build NAME` / the UI materialize everything selected; the runner still reuses."""
    from elt_platform_tests.conftest import make_settings

    settings = make_settings(
        sandbox_home.home,
        ELT_SOURCES_DIR=str(sandbox_home.sources_dir),
        ELT_PROJECT_DIR=str(edited["project"]),
    )
    wh = open_warehouse(settings)
    before = wh.environments.pointers(SANDBOX)
    outcome = build_environment(settings, SANDBOX)
    assert outcome.success, outcome.error
    assert wh.environments.pointers(SANDBOX) == before
    instance = open_instance(settings)
    for model in (EDITED, *DOWNSTREAM, "stg_orders"):
        event = instance.get_latest_materialization_event(dg.AssetKey(model))
        assert event.run_id == outcome.run_id, model
        assert event.asset_materialization.metadata["rebuilt"].value is False, model
