"""`elt sql` is a sandboxed query path: every attempt from issue 13 to read files, write files,
attach the unmasked catalog or change the engine is refused with one line, a hint, exit 2 and an
`access.denied` ledger entry; the engine underneath is locked down as well (defence in depth)."""

from __future__ import annotations

import duckdb
import pytest

from elt_platform.access.facade import lock_down, open_warehouse
from elt_platform.environments import PROD
from elt_platform.errors import QueryRefused
from elt_platform_tests.conftest import cli_env, run_cli
from elt_platform_tests.governance.conftest import as_identity

ANN = "ann@example.com"


def _as(settings, user: str, role: str) -> dict:
    return {**cli_env(settings), "ELT_USER": user, "ELT_ROLE": role}


def _query_denials(settings) -> list:
    auditor = as_identity(settings, "al@x.org", "auditor")
    return [
        e for e in auditor.ledger.entries(kind="access.denied") if e.params["action"] == "query"
    ]


def _attempts(settings, tmp_path) -> list[tuple[str, str]]:
    versions = settings.warehouse_dir / "versions"
    customers = next((versions / "customers").glob("*/*.parquet"))
    catalog = settings.warehouse_dir / "catalogs" / "prod.duckdb"
    return [
        (f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'", "COPY is not allowed"),
        (f"COPY (SELECT email FROM customers) TO '{tmp_path / 'pii.csv'}'", "COPY is not allowed"),
        ("SELECT * FROM read_csv('/etc/passwd')", "table function read_csv is not allowed"),
        (f"SELECT email FROM read_parquet('{customers}')", "table function read_parquet"),
        (f"SELECT email FROM read_parquet('{versions}/customers/*/*.parquet')", "read_parquet"),
        (f"SELECT email FROM '{customers}'", "reading the file"),
        (f"ATTACH '{catalog}' AS unmasked (READ_ONLY)", "ATTACH is not allowed"),
        ("INSTALL httpfs", "INSTALL is not allowed"),
        ("LOAD httpfs", "LOAD is not allowed"),
        ("SET enable_external_access = true", "SET is not allowed"),
        ("PRAGMA database_list", "PRAGMA is not allowed"),
        ("SELECT 1; SELECT email FROM customers", "2 statements"),
        ("SELECT * FROM unmasked.main.customers", "names a database"),
        ("SELECT * FROM query('SELECT 42')", "table function query is not allowed"),
        ("SELECT * FROM information_schema.views", "is not a relation you may read"),
        ("CREATE TABLE t AS SELECT 1", "CREATE is not allowed"),
    ]


def test_every_escape_attempt_is_refused_and_ledgered_and_nothing_is_written(
    installation, tmp_path
):
    analyst = as_identity(installation, ANN, "analyst")
    attempts = _attempts(installation, tmp_path)
    assert attempts, "nothing to check"
    for sql, expected in attempts:
        with pytest.raises(QueryRefused) as raised:
            analyst.query(PROD, sql)
        message = raised.value.args[0]
        assert message.startswith("query refused: ") and expected in message, (sql, message)
        assert "\n" not in message
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "pii.csv").exists()
    denials = _query_denials(installation)
    assert len(denials) == len(attempts)
    assert {(d.actor, d.environment, d.params["role"]) for d in denials} == {
        (f"user:{ANN}", PROD, "analyst")
    }
    # The allowed path still works, and shows the analyst masked PII only.
    result = analyst.query(PROD, "SELECT email FROM customers ORDER BY customer_id", limit=5)
    assert result.columns == ["email"] and len(result.rows) == 5
    assert all(row[0].endswith("@masked.invalid") for row in result.rows)


def test_an_engineer_is_sandboxed_too(installation, tmp_path):
    engineer = as_identity(installation, "eve@example.com", "engineer")
    with pytest.raises(QueryRefused, match="table function read_csv"):
        engineer.query("staging", "SELECT * FROM read_csv('/etc/passwd')")
    rows = engineer.query("staging", "SELECT count(*) FROM raw.orders").rows
    assert rows[0][0] > 0


def test_the_engine_itself_refuses_files_and_reconfiguration_after_lock_down(installation):
    """Defence in depth: even a statement the guard let through could not reach a file."""
    wh = open_warehouse(installation)
    con = wh.catalogs.connect(PROD)
    try:
        lock_down(con, [installation.warehouse_dir / "versions"])
        assert con.execute("SELECT count(*) FROM customers").fetchone()[0] > 0  # views work
        for sql in (
            "SELECT * FROM read_csv('/etc/passwd')",
            "COPY (SELECT 1) TO '/tmp/elt_lock_down_probe.csv'",
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "INSTALL httpfs",
        ):
            with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
                con.execute(sql)
    finally:
        con.close()


def test_cli_refusal_is_one_line_a_hint_and_exit_2(installation, tmp_path):
    analyst = _as(installation, ANN, "analyst")
    target = tmp_path / "out.csv"
    proc = run_cli(installation, "sql", PROD, f"COPY (SELECT 1) TO '{target}'", env=analyst)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: query refused: COPY is not allowed"
    assert lines[1].startswith("hint: run one read-only SELECT") and len(lines) == 2
    assert not target.exists()
    proc = run_cli(installation, "sql", PROD, "SELECT * FROM read_csv('/etc/passwd')", env=analyst)
    assert proc.returncode == 2 and "root:" not in proc.stdout
    assert proc.stderr.startswith("error: query refused: table function read_csv is not allowed")
    proc = run_cli(installation, "sql", PROD, "SELECT no_such_column FROM customers", env=analyst)
    assert proc.returncode == 2 and proc.stderr.startswith("error: query failed: Binder Error")
    ok = run_cli(installation, "sql", PROD, "SELECT email FROM customers LIMIT 3", env=analyst)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("@masked.invalid") == 3
    assert len(_query_denials(installation)) == 2  # a failing but allowed query is no denial


def test_catalog_query_uses_the_same_validator_and_ledgers_refusals(installation):
    analyst = _as(installation, ANN, "analyst")
    for sql, expected in (
        ("SELECT * FROM json_each('[1]')", "table function json_each is not allowed"),
        ("SELECT * FROM ledger", "'ledger' is not a relation you may read"),
        ("ATTACH 'x.db' AS x", "ATTACH is not allowed"),
    ):
        proc = run_cli(installation, "catalog", "query", sql, env=analyst)
        assert proc.returncode == 2, proc.stdout
        assert proc.stderr.startswith(f"error: query refused: {expected}"), proc.stderr
    assert len(_query_denials(installation)) == 3
    ok = run_cli(installation, "catalog", "query", "SELECT count(*) FROM releases", env=analyst)
    assert ok.returncode == 0, ok.stderr
