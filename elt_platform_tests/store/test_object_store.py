"""Versions on shared storage: two installations ("machines", each with its own root and local
version cache) share one metadata store and an S3 bucket, served by moto's S3 server on 127.0.0.1
and reached through s3fs. What one machine commits, the other reads, sandboxes, diffs and rolls
back with the same results; a damaged object is refused; an unusable store is one line, exit 2."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from datetime import timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from elt_demo.api import serving_demo_api
from elt_demo.sources import ensure_synthetic_sources
from elt_platform.access.facade import open_warehouse
from elt_platform.environments import PROD, STAGING
from elt_platform.errors import InvalidObjectStoreUrl, ObjectStoreUnavailable, VersionTampered
from elt_platform.launch.runs import build_environment
from elt_platform.promotion.gc import collect_garbage
from elt_platform.store.ledger import LedgerKind
from elt_platform.store.objects import MARKER, open_object_store
from elt_platform_tests.conftest import cli_env, make_settings, new_warehouse, run_cli

BUCKET = "elt-versions"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """An S3 API server on 127.0.0.1 with one empty bucket; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer
    from s3fs import S3FileSystem

    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            mp.setenv(var, "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            endpoint = f"http://127.0.0.1:{port}"
            S3FileSystem(endpoint_url=endpoint).mkdir(BUCKET)
            yield endpoint
        finally:
            server.stop()


def _bucket(endpoint: str):
    from s3fs import S3FileSystem

    return S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)


def _prod_contents(settings) -> dict[str, tuple]:
    """Row count and an order-independent content hash of every prod view, as read there."""
    con = open_warehouse(settings).connect(PROD)
    try:
        relations = [r[0] for r in con.execute("SELECT relation FROM _elt.pointers").fetchall()]
        assert relations, "prod serves no views"
        return {
            rel: con.execute(
                f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {rel} AS t"
            ).fetchone()
            for rel in relations
        }
    finally:
        con.close()


def _untimed(diffs: list[dict]) -> list[dict]:
    """A diff's per-asset results without how long each took (the rest must be equal)."""
    return [{k: v for k, v in d.items() if k != "seconds"} for d in diffs]


def _cached_versions(settings) -> set[str]:
    folder = settings.warehouse_dir / "versions"
    return {p.name for p in folder.glob("*/*") if p.parent.name != "_pending"}


@pytest.fixture(scope="module")
def machines(tmp_path_factory, s3):
    """Machine A builds staging twice (2,000 orders, then 200 more) and publishes both releases;
    machine B shares A's metadata store, ledger anchor and bucket, and starts with no versions."""
    root = tmp_path_factory.mktemp("objstore")
    first, more = root / "sources", root / "sources_more"
    ensure_synthetic_sources(first, rows=2_000, seed=11)
    shutil.copytree(first, more)
    extra = pq.read_table(sorted((more / "orders").glob("orders-0*.parquet"))[0]).slice(0, 200)
    extra = extra.set_column(0, "order_id", pc.add(extra["order_id"], 1_000_000))
    status = extra.schema.get_field_index("status")
    extra = extra.set_column(status, "status", pa.array(["cancelled"] * 200))
    pq.write_table(extra, more / "orders" / "orders-extra-00000.parquet")
    url = f"s3://{BUCKET}/shared/versions?endpoint_url={s3}"
    releases, contents = [], []
    for sources in (first, more):
        a = make_settings(root / "a", ELT_SOURCES_DIR=str(sources), ELT_VERSIONS_URL=url)
        with serving_demo_api(sources):
            outcome = build_environment(a, STAGING)
        assert outcome.success, outcome.error
        result = open_warehouse(a).publish(STAGING, triggered_by="test", run_id=outcome.run_id)
        releases.append(result.release.release_id)
        contents.append(_prod_contents(a))
    b = make_settings(
        root / "b",
        ELT_SOURCES_DIR=str(more),
        ELT_VERSIONS_URL=url,
        ELT_METADATA_URL=a.metadata_location,
        ELT_LEDGER_ANCHOR=str(a.ledger_anchor_path),
    )
    return {"a": a, "b": b, "url": url, "releases": releases, "contents": contents, "root": root}


def test_a_commit_puts_every_version_in_the_bucket_before_it_is_recorded(machines, s3):
    a = machines["a"]
    versions = open_warehouse(a).versions.list()
    assert versions, "machine A recorded no versions"
    bucket = _bucket(s3)
    for v in versions:
        stored = f"{BUCKET}/shared/versions/{v.directory.parent.name}/{v.version_id}"
        listed = json.loads(bucket.cat_file(f"{stored}/{MARKER}"))
        local = {p.name for p in v.directory.iterdir()}
        assert set(listed) == local, v


def test_second_machine_with_an_empty_cache_reads_prod_like_the_first(machines):
    a, b = machines["a"], machines["b"]
    assert _cached_versions(b) == set()
    assert _prod_contents(b) == machines["contents"][1] == _prod_contents(a)
    prod = open_warehouse(b).environments.pointers(PROD)
    assert prod, "prod points at nothing"
    assert _cached_versions(b) == set(prod.values())  # fetched on first read, nothing more


def test_second_machine_sandboxes_diffs_and_rolls_back_with_the_first_machines_results(machines):
    a, b = machines["a"], machines["b"]
    first, second = machines["releases"]
    run_cli(b, "sandbox", "create", "objs", "--from", first, "--ttl", "1d", check=True)
    on_b = _untimed(json.loads(run_cli(b, "diff", "objs", "--json", check=True).stdout))
    on_a = _untimed(json.loads(run_cli(a, "diff", "objs", "--json", check=True).stdout))
    assert on_b and on_b == on_a
    assert "200" in json.dumps(on_b), "the sandbox (release 1) lacks release 2's 200 orders"
    run_cli(b, "rollback", "--to", first, check=True)
    assert open_warehouse(a).releases.current().release_id == first
    assert _prod_contents(b) == machines["contents"][0] == _prod_contents(a)
    run_cli(b, "rollback", "--to", second, check=True)
    assert _prod_contents(a) == machines["contents"][1] == _prod_contents(b)


def test_an_object_changed_in_the_bucket_is_refused_by_a_machine_that_fetches_it(machines, s3):
    c = make_settings(
        machines["root"] / "c",
        ELT_VERSIONS_URL=machines["url"],
        ELT_METADATA_URL=machines["a"].metadata_location,
    )
    wh = open_warehouse(c)
    version = next(v for v in wh.versions.list() if v.rows > 1)
    stored = f"{BUCKET}/shared/versions/{version.directory.parent.name}/{version.version_id}"
    bucket = _bucket(s3)
    name = version.path.name
    original = bucket.cat_file(f"{stored}/{name}")
    damaged = machines["root"] / "damaged.parquet"
    duckdb.sql(f"COPY (SELECT 1 AS x) TO '{damaged}' (FORMAT parquet)")
    bucket.put_file(str(damaged), f"{stored}/{name}")
    try:
        with pytest.raises(VersionTampered, match=f"{name} (has|does not match)"):
            wh.versions.get(version.asset, version.version_id)
        assert not version.directory.exists()  # nothing of it was kept
    finally:
        bucket.pipe_file(f"{stored}/{name}", original)
    assert wh.versions.get(version.asset, version.version_id).directory.exists()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("s3://no-such-bucket/v?endpoint_url={endpoint}", "no-such-bucket does not exist"),
        ("s3://elt-versions/shared/versions?endpoint_url=http://127.0.0.1:9", "Could not connect"),
    ],
)
def test_an_unusable_object_store_is_one_line_and_exit_2(machines, s3, url, said):
    c = make_settings(
        machines["root"] / f"bad-{len(said)}",
        ELT_VERSIONS_URL=url.format(endpoint=s3),
        ELT_METADATA_URL=machines["a"].metadata_location,
    )
    proc = run_cli(c, "sql", PROD, "SELECT count(*) FROM customers")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    error = [line for line in (proc.stdout + proc.stderr).splitlines() if "object store" in line]
    assert len(error) == 1 and said in error[0], proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_commit_the_store_refuses_records_nothing_and_a_delete_removes_the_object(tmp_path, s3):
    broken = new_warehouse(
        tmp_path / "broken",
        objects=open_object_store("s3://elt-versions/x?endpoint_url=http://127.0.0.1:9"),
    )
    con = duckdb.connect()
    with pytest.raises(ObjectStoreUnavailable):
        broken.versions.write_query(con, "raw/t", "SELECT 42 AS n", environment=STAGING)
    assert broken.versions.list() == []
    assert _cached_versions_in(tmp_path / "broken") == set()
    url = f"s3://{BUCKET}/unit?endpoint_url={s3}"
    wh = new_warehouse(tmp_path / "ok", objects=open_object_store(url))
    version = wh.versions.write_query(con, "raw/t", "SELECT 42 AS n", environment=STAGING)
    stored = f"{BUCKET}/unit/raw__t/{version.version_id}"
    assert _bucket(s3).exists(f"{stored}/{MARKER}")
    wh.versions.delete("raw/t", version.version_id)
    assert not _bucket(s3).exists(f"{stored}/{MARKER}")
    assert not _bucket(s3).exists(f"{stored}/data.parquet")
    assert not version.directory.exists()


def _cached_versions_in(root) -> set[str]:
    return {p.name for p in (root / "versions").glob("*/*") if p.parent.name != "_pending"}


def test_a_versions_url_of_no_known_protocol_is_refused_at_open(tmp_path):
    settings = make_settings(tmp_path / "home", ELT_VERSIONS_URL="nosuch://bucket/versions")
    with pytest.raises(InvalidObjectStoreUrl, match="nosuch://bucket/versions.*cannot be used"):
        open_warehouse(settings)


def test_gc_on_the_second_machine_deletes_the_objects_of_the_versions_it_collects(machines, s3):
    b = machines["b"]
    run_cli(b, "sandbox", "drop", "objs", check=True)  # release 1 is then referenced by nothing
    report = collect_garbage(open_warehouse(b), keep=1, grace=timedelta(0), actor="test")
    assert report.deleted_versions, "GC collected no version of release 1"
    bucket = _bucket(s3)
    for asset, version_id in report.deleted_versions:
        stored = f"{BUCKET}/shared/versions/{asset.replace('/', '__')}/{version_id}"
        assert not bucket.exists(f"{stored}/{MARKER}") and bucket.find(stored) == []
        assert version_id not in _cached_versions(b)
    assert _prod_contents(b) == machines["contents"][1]  # what prod serves is untouched


# A writer killed (SIGKILL) right after it installed and uploaded a version, before its record.
KILLED_WRITER = """
import os, signal, duckdb
from elt_platform.access.facade import open_warehouse
from elt_platform.settings import load_settings
from elt_platform.store.versions import VersionStore

VersionStore._record = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
open_warehouse(load_settings()).versions.write_query(
    duckdb.connect(), "raw/t", "SELECT 7 AS n", environment="staging"
)
"""


def test_gc_collects_what_a_writer_killed_before_recording_left_once_past_the_grace(tmp_path, s3):
    url = f"s3://{BUCKET}/orphans?endpoint_url={s3}"
    settings = make_settings(tmp_path / "home", ELT_VERSIONS_URL=url)
    wh = open_warehouse(settings)
    kept = wh.versions.write_query(duckdb.connect(), "raw/t", "SELECT 1 AS n", environment=STAGING)
    wh.commit_pointers(STAGING, {"raw/t": kept}, run_id="build-1")  # staging serves it
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER], env=cli_env(settings), capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    bucket = _bucket(s3)
    stored = {p.split("/")[-2] for p in bucket.find(f"{BUCKET}/orphans") if p.endswith(MARKER)}
    local = _cached_versions(settings)
    orphan_ids = (stored & local) - {kept.version_id}
    assert len(orphan_ids) == 1, (stored, local)  # uploaded and installed, never recorded
    (orphan,) = orphan_ids
    assert [v.version_id for v in wh.versions.list()] == [kept.version_id]

    young = collect_garbage(wh, keep=5, grace=timedelta(hours=1), actor="test")
    assert young.orphans_removed == []  # may still be a commit in flight: kept
    assert orphan in _cached_versions(settings)
    dry = collect_garbage(wh, keep=5, grace=timedelta(0), actor="test", dry_run=True)
    assert sorted(dry.orphans_removed) == [
        f"local:raw__t/{orphan}",
        f"object store:raw__t/{orphan}",
    ]
    assert bucket.exists(f"{BUCKET}/orphans/raw__t/{orphan}/{MARKER}")

    done = collect_garbage(wh, keep=5, grace=timedelta(0), actor="test")
    assert sorted(done.orphans_removed) == sorted(dry.orphans_removed)
    bucket = _bucket(s3)  # a new client: no listing cached from before the collection
    assert bucket.find(f"{BUCKET}/orphans/raw__t/{orphan}") == []
    assert orphan not in _cached_versions(settings)
    # The version staging serves is untouched, locally and in the bucket; the ledger says what
    # went.
    assert bucket.exists(f"{BUCKET}/orphans/raw__t/{kept.version_id}/{MARKER}")
    assert kept.version_id in _cached_versions(settings)
    entry = wh.ledger.entries(kind=LedgerKind.GC_COLLECTED)[-1]
    assert entry.params["orphans_removed"] == done.orphans_removed
