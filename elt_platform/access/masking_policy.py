"""The stored masking policy every sandbox catalog uses: which columns are PII and how to mask them.

The declarations are the project's (`access/sensitivity.masking_rules`). The policy is
persisted in the metadata store because catalogs are rebuilt by code that has no dbt project
at hand.
"""

from __future__ import annotations

import json

from elt_platform.store.metadata import MetadataStore, utc_now

PiiColumns = dict[str, dict[str, str]]  # asset -> column -> masking rule ("auto" = by name/type)
AUTO = "auto"
KEEP = "keep"  # a classified column below PII: sandboxes show it; unlisted columns are masked
ANY = "*"  # policy[ANY][ANY]: the rule of a column listed nowhere (absent: masked)
# Version parameter set on versions computed in a sandbox from masked inputs.
MASKED_PARAM = "pii_masked"

SCHEMA = """
CREATE TABLE IF NOT EXISTS masking_policy (
    asset TEXT NOT NULL,
    column_name TEXT NOT NULL,
    rule TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (asset, column_name)
);
"""


def rule_of(policy: PiiColumns, asset: str, column: str) -> str:
    """How sandboxes show `asset.column`: its own rule, else the project's default for columns
    declared nowhere, else masked (`auto`): unclassified columns never show raw values."""
    return policy.get(asset, {}).get(column) or policy.get(ANY, {}).get(ANY, AUTO)


def ensure_schema(meta: MetadataStore) -> None:
    with meta.read() as con:
        con.executescript(SCHEMA)


def save_masking_policy(meta: MetadataStore, columns: PiiColumns) -> None:
    """Replace the stored policy with `columns` (one transaction; readers see old or new)."""
    ensure_schema(meta)
    now = utc_now()
    with meta.transaction() as tx:
        current = {
            (r[0], r[1], r[2])
            for r in tx.execute("SELECT asset, column_name, rule FROM masking_policy")
        }
        wanted = {(a, c, r) for a, cols in columns.items() for c, r in cols.items()}
        if current == wanted:
            return
        tx.execute("DELETE FROM masking_policy")
        tx.executemany(
            "INSERT INTO masking_policy (asset, column_name, rule, updated_at) VALUES (?,?,?,?)",
            [(a, c, r, now) for a, c, r in sorted(wanted)],
        )


def load_masking_policy(meta: MetadataStore) -> PiiColumns:
    ensure_schema(meta)
    out: PiiColumns = {}
    with meta.read() as con:
        for row in con.execute("SELECT asset, column_name, rule FROM masking_policy"):
            out.setdefault(row[0], {})[row[1]] = row[2]
    return out


def masked_at_rest(meta: MetadataStore, asset: str, version_id: str) -> bool:
    """True for versions computed in a sandbox from masked inputs (they hold no raw PII)."""
    with meta.read() as con:
        row = con.execute(
            "SELECT params_json FROM versions WHERE asset = ? AND version_id = ?",
            (asset, version_id),
        ).fetchone()
    return bool(row) and bool(json.loads(row[0] or "{}").get(MASKED_PARAM))


def masked_versions(meta: MetadataStore) -> set[tuple[str, str]]:
    """(asset, version_id) of every version computed from masked inputs, in one query."""
    with meta.read() as con:
        rows = con.execute(
            "SELECT asset, version_id FROM versions"
            f" WHERE json_extract(params_json, '$.{MASKED_PARAM}') = 1"
        ).fetchall()
    return {(r[0], r[1]) for r in rows}
