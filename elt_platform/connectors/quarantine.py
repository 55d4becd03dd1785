"""Split extracted rows into those that satisfy the contract and those that do not, in DuckDB.

Every rejected row keeps its full original values (as text), the first reason it failed and its
source position, so an owner can fix the contract or the data and replay it. Row accounting is
exact: rows read = rows loaded + rows quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from elt_platform.project.contracts.model import Contract
from elt_platform.sqlident import quote_ident, sql_literal

_CAST = {
    "varchar": "VARCHAR",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


def sql_type(contract_type: str | None, present: str = "VARCHAR") -> str:
    """The DuckDB type of a contract type (the type seen in the source when none is declared)."""
    if contract_type is None:
        return present
    return _CAST.get(contract_type, contract_type.upper())


@dataclass(frozen=True)
class SplitCounts:
    read: int
    loaded: int
    quarantined: int
    reasons: dict[str, int]


_INTEGERS = {"bigint", "integer", "smallint"}
DUPLICATE_KEY = "duplicate key in batch"  # a later row repeating a key of the same batch


def _reason_cases(contract: Contract, present: dict[str, str]) -> list[tuple[str, str]]:
    """(condition, reason) pairs in priority order; a row takes the first that matches."""
    cases: list[tuple[str, str]] = []
    for col in contract.columns:
        c, name = col.constraints, col.name
        if name not in present:
            if not col.nullable:
                cases.append(("TRUE", f"missing column {name}"))
            continue
        raw = quote_ident(name)
        typed = f"TRY_CAST({raw} AS {sql_type(col.type)})" if col.type else raw
        if col.type:  # an undeclared type is not checked
            bad_type = f"{raw} IS NOT NULL AND {typed} IS NULL"
            if col.type in _INTEGERS and present[name] == "VARCHAR":
                # DuckDB rounds '2.5' when casting text to an integer; a fraction is a wrong type.
                bad_type += f" OR NOT regexp_full_match(trim({raw}), '[+-]?[0-9]+')"
            cases.append((bad_type, f"wrong type in {name}"))
        if not col.nullable:
            kind = "null key" if name in contract.primary_key else "null value"
            cases.append((f"{raw} IS NULL", f"{kind} in {name}"))
        if col.type == "varchar":
            # Replacement characters mean the source bytes were not valid text.
            cases.append(
                (f"contains(CAST({raw} AS VARCHAR), chr(65533))", f"bad encoding in {name}")
            )
        if c.min is not None:
            cases.append((f"{typed} < {c.min}", f"{name} below minimum {c.min}"))
        if c.max is not None:
            cases.append((f"{typed} > {c.max}", f"{name} above maximum {c.max}"))
        if c.allowed_values is not None:
            values = ", ".join(sql_literal(v) for v in c.allowed_values)
            cases.append(
                (f"CAST({raw} AS VARCHAR) NOT IN ({values})", f"{name} not an allowed value")
            )
        if c.regex is not None:
            cases.append(
                (
                    f"NOT regexp_full_match(CAST({raw} AS VARCHAR), {sql_literal(c.regex)})",
                    f"{name} does not match pattern",
                )
            )
    return cases


def split_rows(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    contract: Contract,
    *,
    position_sql: str = "NULL",
    existing_keys_sql: str | None = None,
    valid_table: str = "_elt_valid",
    rejected_table: str = "_elt_rejected",
) -> SplitCounts:
    """Create `valid_table` (typed to the contract) and `rejected_table` (reason, position, row)."""
    con.execute(
        f"CREATE OR REPLACE TABLE _elt_src AS SELECT *, {position_sql} AS _elt_position, "
        f"row_number() OVER () AS _elt_row FROM ({source_sql})"
    )
    present = {r[0]: r[1] for r in con.execute("DESCRIBE _elt_src").fetchall()}
    cases = _reason_cases(contract, present)
    key = [k for k in contract.primary_key if k in present]
    if key:
        cols = ", ".join(quote_ident(k) for k in key)
        # The first occurrence of a key loads; later ones go to quarantine, never vanish.
        dup = f"row_number() OVER (PARTITION BY {cols} ORDER BY _elt_row) > 1"
        cases.append((dup, DUPLICATE_KEY))
        if existing_keys_sql:
            types = {
                c.name: sql_type(c.type, present.get(c.name, "VARCHAR")) for c in contract.columns
            }
            typed = ", ".join(f"TRY_CAST({quote_ident(k)} AS {types[k]})" for k in key)
            cases.append(
                (
                    f"({typed}) IN (SELECT {cols} FROM ({existing_keys_sql}))",
                    f"key {', '.join(key)} already loaded",
                )
            )
    reason = "CASE " + " ".join(f"WHEN {cond} THEN {sql_literal(r)}" for cond, r in cases) + " END"
    con.execute(
        f"CREATE OR REPLACE TABLE _elt_judged AS SELECT *, {reason} AS _elt_reason FROM _elt_src"
    )
    typed_cols = ", ".join(
        f"TRY_CAST({quote_ident(c.name)} AS {sql_type(c.type, present[c.name])}) AS "
        f"{quote_ident(c.name)}"
        if c.name in present
        else f"CAST(NULL AS {sql_type(c.type)}) AS {quote_ident(c.name)}"
        for c in contract.columns
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {valid_table} AS SELECT {typed_cols} "
        "FROM _elt_judged WHERE _elt_reason IS NULL ORDER BY _elt_row"
    )
    payload_cols = [c for c in present if not c.startswith("_elt_")]
    fields = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in payload_cols)
    payload = f"to_json(struct_pack({fields}))"
    con.execute(
        f"CREATE OR REPLACE TABLE {rejected_table} AS SELECT _elt_reason AS reason, "
        f"CAST(_elt_position AS VARCHAR) AS source_position, _elt_row AS source_row, "
        f"CAST({payload} AS VARCHAR) AS row_json FROM _elt_judged WHERE _elt_reason IS NOT NULL "
        "ORDER BY _elt_row"
    )
    read = con.execute("SELECT count(*) FROM _elt_src").fetchall()[0][0]
    loaded = con.execute(f"SELECT count(*) FROM {valid_table}").fetchall()[0][0]
    reasons = dict(
        con.execute(
            f"SELECT reason, count(*) FROM {rejected_table} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    quarantined = sum(reasons.values())
    if read != loaded + quarantined:  # cannot happen unless the SQL above is wrong
        raise AssertionError(f"row accounting broken: {read} != {loaded} + {quarantined}")
    return SplitCounts(read, loaded, quarantined, reasons)
