"""Creating sandboxes: a pointer copy of a release (no data copied), a catalog, a partition, a
record; and bad input that changes nothing."""

from __future__ import annotations

import json

import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.durations import parse_duration
from elt_platform.errors import (
    ConfigError,
    EnvironmentExists,
    InvalidDuration,
    InvalidEnvironmentName,
    UnknownRelease,
)
from elt_platform.orchestration.instance import open_instance
from elt_platform.orchestration.partitions import environment_partitions
from elt_platform.sandboxes.create import create_sandbox
from elt_platform.sandboxes.experiment import ExperimentStore
from elt_platform_tests.conftest import run_cli
from elt_platform_tests.sandboxes.conftest import version_files


def _state(settings):
    """Everything creation could touch: environments, pointers, catalogs, records, data files."""
    wh = open_warehouse(settings)
    envs = {r.name: wh.environments.pointers(r.name) for r in wh.environments.list()}
    catalogs = sorted(p.name for p in wh.catalogs.dir.glob("*.duckdb"))
    records = len(ExperimentStore(wh.root, wh.meta).list())
    return envs, catalogs, records, version_files(settings)


def test_create_copies_release_pointers_without_copying_any_data(sandbox_home):
    wh = open_warehouse(sandbox_home)
    release = wh.releases.current()
    files_before = version_files(sandbox_home)
    instance = open_instance(sandbox_home)
    created = create_sandbox(
        open_warehouse(sandbox_home),
        "ana_pointer_copy",
        ttl="3d",
        owner="ana@example.com",
        instance=instance,
    )
    # O(1) in data size: not one Parquet file written, copied or rewritten.
    assert version_files(sandbox_home) == files_before
    assert created.release_id == release.release_id
    assert wh.environments.pointers("ana_pointer_copy") == release.manifest
    record = wh.environments.get("ana_pointer_copy")
    assert (record.owner, record.base_release, record.ttl_seconds) == (
        "ana@example.com",
        release.release_id,
        3 * 86_400,
    )
    assert instance.has_dynamic_partition(environment_partitions.name, "ana_pointer_copy")
    con = duckdb.connect(str(created.catalog), read_only=True)
    try:
        views = {
            f"{s}.{n}"
            for s, n in con.execute(
                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        prod_orders = wh.catalogs.connect("prod")
        try:
            expected = prod_orders.execute("SELECT count(*) FROM main.orders").fetchone()[0]
        finally:
            prod_orders.close()
        assert con.execute("SELECT count(*) FROM main.orders").fetchone()[0] == expected
    finally:
        con.close()
    assert {"raw.customers", "main.customers", "main.orders", "main.stg_orders"} <= views
    experiment = ExperimentStore(wh.root, wh.meta).get("ana_pointer_copy")
    assert experiment["source_release"] == release.release_id
    assert experiment["input_versions"] == release.manifest
    assert experiment["seed"] == 7 and experiment["code_version"]["label"]
    assert json.loads(ExperimentStore(wh.root, wh.meta).path("ana_pointer_copy").read_text())
    ledger = [e for e in wh.ledger.entries() if e.environment == "ana_pointer_copy"]
    assert [e.kind for e in ledger] == ["sandbox.created"]


def test_create_from_a_named_release_pins_that_release(sandbox_home):
    wh = open_warehouse(sandbox_home)
    first = wh.releases.list()[-1]
    create_sandbox(open_warehouse(sandbox_home), "ana_named_release", from_release=first.release_id)
    assert wh.environments.get("ana_named_release").base_release == first.release_id
    assert wh.environments.pointers("ana_named_release") == first.manifest


def test_create_job_in_the_dagster_ui_creates_a_partition(sandbox_home):
    from elt_platform.launch.runs import load_definitions

    instance = open_instance(sandbox_home)
    job = load_definitions(sandbox_home).resolve_job_def("create_sandbox")
    result = job.execute_in_process(
        instance=instance,
        run_config={
            "ops": {
                "create_sandbox_from_release": {
                    "config": {"name": "ui_made", "ttl": "12h", "owner": "team:analytics"}
                }
            }
        },
        tags={"elt/user": "eve@example.com", "elt/role": "engineer"},  # set in the launchpad
    )
    assert result.success
    wh = open_warehouse(sandbox_home)
    assert wh.environments.get("ui_made").ttl_seconds == 12 * 3600
    assert instance.has_dynamic_partition(environment_partitions.name, "ui_made")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "Bad Name"}, InvalidEnvironmentName),
        ({"name": "prod"}, InvalidEnvironmentName),
        ({"name": "staging"}, InvalidEnvironmentName),
        ({"name": "ana_pointer_copy_dup", "ttl": "7 days"}, InvalidDuration),
        ({"name": "ana_pointer_copy_dup", "ttl": "0s"}, InvalidDuration),
        ({"name": "ana_pointer_copy_dup", "from_release": "r9999-00000000"}, UnknownRelease),
        ({"name": "ana_pointer_copy_dup", "owner": "not an owner"}, ConfigError),
        ({"name": "ana_pointer_copy_dup", "vars": {"elt_environment": "prod"}}, ConfigError),
    ],
)
def test_bad_input_raises_a_clear_error_and_changes_nothing(sandbox_home, kwargs, error):
    before = _state(sandbox_home)
    with pytest.raises(error):
        create_sandbox(open_warehouse(sandbox_home), **kwargs)
    assert _state(sandbox_home) == before


def test_duplicate_name_is_refused_and_the_existing_sandbox_is_untouched(sandbox_home):
    create_sandbox(open_warehouse(sandbox_home), "ana_dup")
    before = _state(sandbox_home)
    with pytest.raises(EnvironmentExists):
        create_sandbox(open_warehouse(sandbox_home), "ana_dup", ttl="1h")
    assert _state(sandbox_home) == before


def test_cli_errors_are_one_line_and_change_nothing(sandbox_home):
    before = _state(sandbox_home)
    # One subprocess per case costs seconds: the library-level test above covers the rest.
    cases = [
        (["sandbox", "create", "okname", "--ttl", "soon"], "invalid duration"),
        (["sandbox", "create", "okname", "--from", "r0042-deadbeef"], "unknown release"),
        (["sandbox", "create", "okname", "--flag", "no_equals"], "invalid flag"),
        (["sandbox", "drop", "prod"], "'prod' cannot be dropped"),
    ]
    for args, message in cases:
        proc = run_cli(sandbox_home, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(f"error: {message}"), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert _state(sandbox_home) == before


def test_cli_create_then_list_shows_owner_age_ttl_and_owned_size(sandbox_home):
    proc = run_cli(
        sandbox_home,
        "sandbox",
        "create",
        "cli_made",
        "--ttl",
        "2d",
        "--owner",
        "bo@example.com",
        "--flag",
        "fast_path=true",
        check=True,
    )
    assert "no data copied" in proc.stdout
    listing = run_cli(sandbox_home, "sandbox", "list", check=True).stdout
    row = next(line for line in listing.splitlines() if " cli_made " in line)
    assert "bo@example.com" in row and " 2d " in row and "0 versions" in row
    record = open_warehouse(sandbox_home).environments.get("cli_made")
    assert record.config["flags"] == {"fast_path": True}


def test_durations_parse_strictly():
    assert parse_duration("90s") == 90
    assert parse_duration("1d12h") == 36 * 3600
    assert parse_duration("2w") == 14 * 86_400
    assert parse_duration("none") is None
    for bad in ["", "7", "7 d", "d7", "-1h", "1y", "0m", "1h-"]:
        with pytest.raises(InvalidDuration):
            parse_duration(bad)


def test_a_failed_catalog_build_rolls_the_creation_back(sandbox_home):
    wh = open_warehouse(sandbox_home)
    blocker = wh.catalogs.path("half_made")
    blocker.mkdir(parents=True)  # the catalog cannot be renamed into place
    try:
        before = _state(sandbox_home)
        with pytest.raises(OSError):
            create_sandbox(open_warehouse(sandbox_home), "half_made")
        assert _state(sandbox_home) == before
        kinds = [e.kind for e in wh.ledger.entries(environment="half_made")]
        assert kinds == ["sandbox.created", "sandbox.dropped"]  # the ledger is append-only
        assert not ExperimentStore(wh.root, wh.meta).path("half_made").exists()
    finally:
        blocker.rmdir()
