"""Dropping and TTL pruning: the record is archived first, only versions the sandbox owns are
deleted, and nothing prod, a release or another environment uses is touched."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.errors import EnvironmentBusy, ProtectedEnvironment, UnknownEnvironment
from elt_platform.launch.runs import load_definitions
from elt_platform.orchestration.instance import open_instance
from elt_platform.orchestration.partitions import environment_partitions
from elt_platform.sandboxes.create import create_sandbox
from elt_platform.sandboxes.experiment import ExperimentStore
from elt_platform.sandboxes.prune import drop_sandbox, owned_versions, sandbox_status
from elt_platform.store.locks import EnvironmentLocks


def _write(wh, env: str, asset: str, sql: str):
    """A version materialized in `env` and pointed at there, as a sandbox build would do."""
    con = duckdb.connect()
    try:
        version = wh.versions.write_query(con, asset, sql, environment=env, run_id="test")
    finally:
        con.close()
    wh.environments.set_pointers(env, {asset: version.version_id}, run_id="test")
    return version


def test_ttl_schedule_archives_then_drops_expired_sandboxes_and_only_their_own_data(sandbox_home):
    wh = open_warehouse(sandbox_home)
    instance = open_instance(sandbox_home)
    prod_before = wh.environments.pointers("prod")
    create_sandbox(
        open_warehouse(sandbox_home),
        "short_lived",
        ttl="1s",
        owner="ana@example.com",
        instance=instance,
    )
    create_sandbox(open_warehouse(sandbox_home), "long_lived", ttl="30d", instance=instance)
    create_sandbox(open_warehouse(sandbox_home), "forever", ttl="none", instance=instance)
    owned = _write(wh, "short_lived", "scratch/only_mine", "SELECT range AS x FROM range(100)")
    shared = _write(wh, "short_lived", "scratch/shared", "SELECT 42 AS answer")
    wh.environments.set_pointers("long_lived", {"scratch/shared": shared.version_id}, run_id="t")
    assert {(a, v) for a, v, _ in owned_versions(wh, "short_lived")} == {
        ("scratch/only_mine", owned.version_id)
    }
    status = {s.record.name: s for s in sandbox_status(wh)}
    assert status["short_lived"].owned_bytes == owned.bytes
    time.sleep(1.2)
    assert {s.record.name for s in sandbox_status(wh) if s.expired} == {"short_lived"}

    defs = load_definitions(sandbox_home)
    tags = defs.resolve_schedule_def("prune_sandboxes_hourly").tags  # as the schedule launches it
    result = defs.resolve_job_def("prune_sandboxes").execute_in_process(
        instance=instance, tags=tags
    )
    assert result.success
    names = {r.name for r in wh.environments.list()}
    assert "short_lived" not in names and {"long_lived", "forever"} <= names
    assert not instance.has_dynamic_partition(environment_partitions.name, "short_lived")
    assert not owned.directory.exists()  # owned and unreferenced: deleted
    assert shared.directory.exists() and wh.versions.get("scratch/shared", shared.version_id)
    assert wh.environments.pointers("prod") == prod_before
    assert prod_before, "nothing to check"
    for asset, version_id in prod_before.items():
        assert wh.versions.get(asset, version_id).path.exists()
    assert not wh.catalogs.path("short_lived").exists()
    record = ExperimentStore(wh.root, wh.meta).get("short_lived")
    assert record["status"] == "pruned"
    archived = json.loads(Path(_archive_path(wh, "short_lived")).read_text())
    assert archived["archive_summary"]["deleted_versions"] == [
        f"scratch/only_mine@{owned.version_id}"
    ]
    assert archived["owner"] == "ana@example.com"
    kinds = [e.kind for e in wh.ledger.entries(environment="short_lived")]
    assert kinds == [
        "sandbox.created",
        "pointers.committed",
        "pointers.committed",
        "sandbox.pruned",
    ]
    assert wh.ledger.verify().ok


def _archive_path(wh, sandbox: str) -> str:
    with wh.meta.read() as con:
        return con.execute(
            "SELECT path FROM experiments WHERE sandbox = ? ORDER BY created_at DESC", (sandbox,)
        ).fetchone()[0]


def test_drop_refuses_core_environments_unknown_names_and_busy_sandboxes(sandbox_home):
    wh = open_warehouse(sandbox_home)
    create_sandbox(open_warehouse(sandbox_home), "being_built")
    before = {r.name: wh.environments.pointers(r.name) for r in wh.environments.list()}
    for name, error in (
        ("prod", ProtectedEnvironment),
        ("staging", ProtectedEnvironment),
        ("no_such_sandbox", UnknownEnvironment),
    ):
        with pytest.raises(error):
            drop_sandbox(wh, name, actor="test")
    other_process = EnvironmentLocks(wh.root / "locks", url=sandbox_home.metadata_url)
    other_process.acquire("being_built", holder="run 1234")
    try:
        # flock is per open file (an advisory lock per session): a second holder in this process
        # conflicts like another process
        with pytest.raises(EnvironmentBusy):
            drop_sandbox(wh, "being_built", actor="test")
    finally:
        other_process.release_all()
    after = {r.name: wh.environments.pointers(r.name) for r in wh.environments.list()}
    assert after == before
    assert ExperimentStore(wh.root, wh.meta).get("being_built")["status"] == "active"
    drop_sandbox(wh, "being_built", actor="test")
    assert "being_built" not in {r.name for r in wh.environments.list()}
