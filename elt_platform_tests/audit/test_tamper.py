"""Every tamper kind from issue 13, done to a real built and published installation the way
someone bypassing the platform would (editing meta.sqlite or the Parquet files directly), is
reported by `elt audit verify` (state, chain, anchors, signatures) or `elt audit verify --data`
(content), and a tampered version is never reused by a later build."""

from __future__ import annotations

import dataclasses
import json

import duckdb
import pytest

from elt_platform.access.facade import open_warehouse
from elt_platform.environments import PROD, STAGING
from elt_platform.errors import VersionTampered
from elt_platform.launch.runs import build_environment
from elt_platform.store.ledger import GENESIS, LedgerKind, canonical_json, entry_hash
from elt_platform_tests.conftest import direct_sql, new_warehouse, run_cli
from elt_platform_tests.governance.conftest import copy_installation


@pytest.fixture
def home(platform_home, tmp_path):
    """A private copy of the session's built and published installation (anchors included)."""
    return copy_installation(platform_home, tmp_path / "home")


def _sql(settings, *statements):
    """Edit the metadata store directly, as someone bypassing the platform would."""
    direct_sql(settings, *statements)


def _problems(settings) -> dict[str, str]:
    report = open_warehouse(settings).ledger.verify()
    return {p.kind: p.message for p in report.problems}


def _recompute_chain(settings) -> None:
    """Rehash every entry from the first, so the chain itself is consistent again."""
    entries = open_warehouse(settings).ledger.entries()
    prev, updates = GENESIS, []
    for e in entries:
        digest = entry_hash(e.hashed_fields(), prev)
        updates.append(
            ("UPDATE ledger SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, e.seq))
        )
        prev = digest
    _sql(settings, ("UPDATE ledger SET hash = 'tmp' || seq",), *updates)


def test_an_untouched_installation_verifies_against_its_anchors_and_state(home):
    report = open_warehouse(home).ledger.verify()
    assert report.ok, report.problems
    assert report.anchors >= 1 and report.entries > 1
    kinds = {e.kind for e in open_warehouse(home).ledger.entries()}
    assert {LedgerKind.POINTERS_COMMITTED, LedgerKind.RELEASE_PUBLISHED} <= kinds


def test_cutting_the_tail_is_detected(home):
    last = open_warehouse(home).ledger.head()[0]
    _sql(home, ("DELETE FROM ledger WHERE seq > ?", (last - 2,)))
    problems = _problems(home)
    assert problems["truncated"].startswith(f"the ledger ends at entry {last - 2} but entry {last}")
    assert "state changed outside the platform" in problems["state"], problems


def test_deleting_every_entry_is_detected(home):
    _sql(home, ("DELETE FROM ledger",))
    problems = _problems(home)
    assert problems["truncated"].startswith("the ledger ends at entry 0 but entry")
    assert "the ledger is empty but the metadata store holds 1 releases" in problems["deleted"]


def test_editing_an_entry_and_recomputing_the_chain_is_detected(home):
    _sql(home, ("UPDATE ledger SET actor = 'user:mallory' WHERE seq = 1",))
    _recompute_chain(home)
    problems = _problems(home)
    assert "edited" not in problems  # the chain itself is consistent again ...
    assert "the chain was edited and its hashes recomputed" in problems["recomputed"]  # ... but


def test_a_forged_append_is_detected_when_a_ledger_key_is_configured(home, monkeypatch):
    monkeypatch.setenv("ELT_LEDGER_KEY", "a-secret-only-the-platform-knows")
    wh = open_warehouse(home)
    wh.ledger.append("sandbox.created", actor="user:eve", environment="exp1")  # signed
    assert wh.ledger.verify().ok and wh.ledger.verify().signed
    last = wh.ledger.entries()[-1]
    forged = dataclasses.replace(last, seq=last.seq + 1, actor="user:mallory", prev_hash=last.hash)
    digest = entry_hash(forged.hashed_fields(), last.hash)
    _sql(
        home,
        (
            "INSERT INTO ledger (seq, at, kind, actor, environment, run_id, code_version,"
            " params_json, assets_json, prev_hash, hash, state_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                forged.seq, forged.at, forged.kind, forged.actor, forged.environment, None,
                forged.code_version, canonical_json(forged.params), canonical_json(forged.assets),
                last.hash, digest, canonical_json(forged.state),
            ),
        ),
    )  # fmt: skip
    problems = _problems(home)
    assert problems == {
        "unsigned": f"entry {forged.seq} is not signed: it was appended without the ledger key"
    }
    _sql(
        home,
        (
            "UPDATE ledger SET key_id = ?, mac = ? WHERE seq = ?",
            (last.key_id, "0" * 64, forged.seq),
        ),
    )
    assert "it was forged or edited without the key" in _problems(home)["forged"]


def test_editing_a_release_manifest_is_detected_naming_the_release(home):
    wh = open_warehouse(home)
    release = wh.releases.current()
    _sql(
        home,
        (
            "UPDATE release_entries SET version_id = 'f0f0f0f0f0f0f0f0' WHERE release_id = ?"
            " AND asset = 'orders'",
            (release.release_id,),
        ),
    )
    messages = [p.message for p in open_warehouse(home).ledger.verify().problems]
    assert len(messages) == 2, messages
    assert (
        "releases differ from what the ledger recorded (a release manifest was changed)"
        in (messages[0])
    )
    assert messages[1].startswith(f"release {release.release_id}'s manifest differs from the one")


def test_editing_a_pointer_or_the_current_release_is_detected(home):
    wh = open_warehouse(home)
    first = wh.releases.current().release_id
    version = wh.versions.write_query(
        duckdb.connect(), "raw/products", "SELECT 1 AS product_id", environment=STAGING
    )
    wh.commit_pointers(STAGING, {"raw/products": version}, run_id="t")
    second = wh.publish(STAGING, triggered_by="test").release.release_id
    assert wh.ledger.verify().ok
    _sql(home, ("UPDATE environments SET current_release = ? WHERE name = 'prod'", (first,)))
    assert _problems(home) == {
        "state": f"the state changed outside the platform since entry {wh.ledger.head()[0]}: "
        f"prod's current release is {first} but the ledger recorded {second}"
    }
    _sql(home, ("UPDATE environments SET current_release = ? WHERE name = 'prod'", (second,)))
    _sql(
        home,
        (
            "UPDATE env_pointers SET version_id = 'forged' WHERE environment = 'staging' AND asset = 'orders'",
        ),
    )
    assert "staging's pointers were changed" in _problems(home)["state"]
    proc = run_cli(home, "audit", "verify")
    assert proc.returncode == 1
    assert "ledger tampered: the state changed outside the platform" in proc.stdout


def _overwrite(path, sql: str) -> None:
    con = duckdb.connect()
    try:
        con.execute(f"COPY ({sql}) TO '{path}.tmp' (FORMAT parquet)")
    finally:
        con.close()
    path.with_name(path.name + ".tmp").replace(path)


def test_an_overwritten_parquet_file_is_named_by_verify_data(home):
    wh = open_warehouse(home)
    version = wh.resolve(PROD)["daily_revenue"]
    path = version.path
    _overwrite(path, f"SELECT * REPLACE (revenue * 2 AS revenue) FROM read_parquet('{path}')")
    assert wh.ledger.verify().ok  # the ledger itself is intact ...
    report = wh.verify_data()
    assert report.checked == report.live_versions > 0 and report.rows > 0
    [mismatch] = report.mismatches  # ... the data is not
    assert mismatch.startswith(f"daily_revenue@{version.version_id} (used by ")
    assert "prod" in mismatch and "content hashes to" in mismatch
    assert "data.parquet has" in mismatch and "recorded" in mismatch  # its size changed
    proc = run_cli(home, "audit", "verify", "--data")
    assert proc.returncode == 1, proc.stdout
    assert f"data tampered: daily_revenue@{version.version_id}" in proc.stdout
    assert "1 versions damaged:" in proc.stdout and "rows/s" in proc.stdout
    sampled = run_cli(home, "audit", "verify", "--sample", "0.2")
    assert "live versions re-hashed" in sampled.stdout


def test_a_tampered_version_is_not_reused_by_a_later_build(home):
    wh = open_warehouse(home)
    version = wh.resolve(STAGING)["raw/products"]
    [part] = wh.versions.part_files(version)
    _overwrite(part, f"SELECT * REPLACE (unit_price * 0 AS unit_price) FROM read_parquet('{part}')")
    outcome = build_environment(home, STAGING, selection=["raw/products"])  # same CSV again
    assert not outcome.success
    assert (
        f"version {version.version_id} of raw/products was changed on disk after it was committed"
        in outcome.error
    )
    assert wh.resolve(STAGING)["raw/products"].version_id == version.version_id


def test_commit_file_reuse_rechecks_size_and_checksum(tmp_path):
    wh = new_warehouse(tmp_path / "warehouse")
    con = duckdb.connect()
    try:
        first = wh.versions.write_query(con, "t", "SELECT 1 AS id", environment=STAGING)
        recorded = json.loads(
            direct_sql(wh.meta, ("SELECT files_json FROM versions",))[0]["files_json"]
        )
        assert recorded["data.parquet"][0] == first.path.stat().st_size
        data = bytearray(first.path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, other bytes
        first.path.write_bytes(bytes(data))
        with pytest.raises(
            VersionTampered, match="data.parquet does not match its recorded checksum"
        ):
            wh.versions.write_query(con, "t", "SELECT 1 AS id", environment=STAGING)
        first.path.write_bytes(first.path.read_bytes() + b"x")
        with pytest.raises(VersionTampered, match="data.parquet has"):
            wh.versions.write_query(con, "t", "SELECT 1 AS id", environment=STAGING)
    finally:
        con.close()
