"""PII masking in DuckDB: keyed stable tokens, fake well-formed values, generalised dates.

Every relation a sandbox exposes (its catalog views and the inputs mounted for its dbt runs) wraps
the version scan in `SELECT * REPLACE (<mask> AS col, ...)`, so masking costs nothing at creation
and is computed by DuckDB in bulk, never per row in Python. Tokens are sha256 over a salt derived
from the configured key, so the same value gets the same token in every table and joins still work.

The configured key never leaves this process: views carry only the derived salt (a reader of a
catalog file can therefore test guesses against tokens, but not read the raw values through it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from elt_platform.access.masking_policy import (
    AUTO,
    KEEP,
    PiiColumns,
    load_masking_policy,
    masked_versions,
    rule_of,
)
from elt_platform.sqlident import quote_ident, sql_literal
from elt_platform.store.metadata import MetadataStore
from elt_platform.store.versions import Version

KEY_ENV_VAR = "ELT_MASKING_KEY"
# Used when ELT_MASKING_KEY is unset so the demo runs out of the box; set a secret in production.
DEMO_KEY = "elt-demo-masking-key"
RULES = ("email", "name", "phone", "address", "postal_code", "date_year", "token", "redact")
_SYLLABLES = (
    "ba",
    "de",
    "fi",
    "go",
    "ku",
    "la",
    "me",
    "ni",
    "po",
    "ru",
    "sa",
    "te",
    "vi",
    "zo",
    "ka",
    "no",
)
_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UBIGINT", "UINTEGER"}
RelationSql = Callable[[str, Version], str]


@dataclass(frozen=True)
class MaskingKey:
    """The derived salt used in SQL and a short public id to tell keys apart in records."""

    salt: str
    key_id: str

    def __repr__(self) -> str:  # never print the salt by accident
        return f"MaskingKey(key_id={self.key_id!r})"


def masking_key(environ: Mapping[str, str] | None = None) -> MaskingKey:
    """Read the key from ELT_MASKING_KEY (or the demo default) at call time."""
    env = os.environ if environ is None else environ
    secret = (env.get(KEY_ENV_VAR) or DEMO_KEY).encode()
    salt = hmac.new(secret, b"elt-masking-salt-v1", hashlib.sha256).hexdigest()[:32]
    key_id = hmac.new(secret, b"elt-masking-key-id", hashlib.sha256).hexdigest()[:8]
    return MaskingKey(salt=salt, key_id=key_id)


def resolve_rule(rule: str, column: str, duckdb_type: str) -> str:
    """The concrete rule for a column: `auto` picks one from its name and type."""
    name, typ = column.lower(), duckdb_type.upper()
    is_text = typ == "VARCHAR"
    if rule != AUTO:
        text_only = {"email", "name", "phone", "address", "postal_code"}
        if rule not in RULES or (rule in text_only and not is_text):
            return "token" if (is_text or typ in _INTEGER_TYPES) else "redact"
        if rule == "date_year" and not typ.startswith(("DATE", "TIMESTAMP")):
            return "redact"
        return rule
    if typ.startswith(("DATE", "TIMESTAMP")):
        return "date_year"
    if is_text:
        for needle, chosen in (
            ("email", "email"),
            ("phone", "phone"),
            ("mobile", "phone"),
            ("address", "address"),
            ("street", "address"),
            ("postal", "postal_code"),
            ("zip", "postal_code"),
        ):
            if needle in name:
                return chosen
        if name == "name" or name.endswith("name"):
            return "name"
        return "token"
    return "token" if typ in _INTEGER_TYPES else "redact"


@dataclass(frozen=True)
class ColumnMask:
    """How one column is masked: an optional keyed digest (computed once per row) and an
    expression over it (`{h}` stands for the digest column)."""

    digest_sql: str | None
    expression: str

    def render(self, digest_column: str) -> str:
        return self.expression.replace("{h}", digest_column)


def column_mask(rule: str, column: str, duckdb_type: str, salt: str) -> ColumnMask:
    """The mask of `column` under `rule` (NULL stays NULL; the type is preserved)."""
    col = quote_ident(column)
    typ = duckdb_type.upper()
    text = f"CAST({col} AS VARCHAR)"

    def digest(purpose: str, value: str) -> str:
        return f"sha256({sql_literal(salt + ':' + purpose + ':')} || {value})"

    if rule == "email":
        return ColumnMask(
            digest("email", f"lower(trim({col}))"), "'user_' || left({h}, 16) || '@masked.invalid'"
        )
    if rule == "name":
        return ColumnMask(digest("name", text), _fake_word(1))
    if rule == "phone":
        return ColumnMask(
            digest("phone", text),
            f"'+1-555-00' || lpad(CAST({_hex_int(1, 4)} % 100 AS VARCHAR), 2, '0') || '-' || "
            f"lpad(CAST({_hex_int(5, 4)} % 10000 AS VARCHAR), 4, '0')",
        )
    if rule == "address":
        number = f"CAST({_hex_int(1, 4)} % 9999 + 1 AS VARCHAR)"
        return ColumnMask(digest("address", text), f"{number} || ' ' || {_fake_word(5)} || ' Way'")
    if rule == "postal_code":  # generalised: the area, never a deliverable code
        return ColumnMask(None, f"left({text}, 3) || '**'")
    if rule == "date_year":
        return ColumnMask(None, f"CAST(date_trunc('year', {col}) AS {typ})")
    if rule == "token":
        if typ in _INTEGER_TYPES:
            width = 15 if typ in {"BIGINT", "HUGEINT", "UBIGINT"} else 7  # stays positive
            return ColumnMask(digest("id", text), f"CAST({_hex_int(1, width)} AS {typ})")
        return ColumnMask(digest("id", text), "'tok_' || left({h}, 16)")
    return ColumnMask(None, f"CAST(NULL AS {typ})")


def masked_select(
    scan_sql: str, schema: tuple[tuple[str, str], ...], rules: Mapping[str, str], salt: str
) -> str:
    """`SELECT * REPLACE (...)` over `scan_sql` masking the listed columns present in `schema`.

    Each keyed digest is computed once per row in an inner projection, then dropped."""
    digests: list[str] = []
    replacements: list[str] = []
    for name, typ in schema:
        if name not in rules:
            continue
        mask = column_mask(resolve_rule(rules[name], name, typ), name, typ, salt)
        helper = f"__elt_mask_{len(digests)}"
        if mask.digest_sql is not None:
            digests.append(f"{mask.digest_sql} AS {helper}")
        replacements.append(f"{mask.render(helper)} AS {quote_ident(name)}")
    if not replacements:
        return f"SELECT * FROM {scan_sql}"
    if not digests:
        return f"SELECT * REPLACE ({', '.join(replacements)}) FROM {scan_sql}"
    helpers = ", ".join(f"__elt_mask_{i}" for i in range(len(digests)))
    return (
        f"SELECT * EXCLUDE ({helpers}) REPLACE ({', '.join(replacements)}) "
        f"FROM (SELECT *, {', '.join(digests)} FROM {scan_sql})"
    )


def sandbox_masks(
    policy: PiiColumns, asset: str, schema: tuple[tuple[str, str], ...]
) -> dict[str, str]:
    """column -> rule of the columns a sandbox masks in `asset`: its PII columns, and every
    column the project has not classified (undeclared, or added in a sandbox) until it is."""
    rules = {c: rule_of(policy, asset, c) for c, _ in schema}
    return {c: rule for c, rule in rules.items() if rule != KEEP}


def masking_relation_sql(meta: MetadataStore, policy: PiiColumns, key: MaskingKey) -> RelationSql:
    """Relation SQL for a sandbox: masked, except versions already computed from masked inputs."""

    already_masked: set[tuple[str, str]] | None = None

    def relation(asset: str, version: Version) -> str:
        nonlocal already_masked
        rules = sandbox_masks(policy, asset, version.schema)
        if not rules:
            return f"SELECT * FROM {version.scan_sql}"
        if already_masked is None:  # one query for a whole catalog, on first need
            already_masked = masked_versions(meta)
        if (asset, version.version_id) in already_masked:
            return f"SELECT * FROM {version.scan_sql}"
        return masked_select(version.scan_sql, version.schema, rules, key.salt)

    return relation


def sandbox_relation_sql(meta: MetadataStore) -> RelationSql:
    """The masking relation SQL with the stored policy and the configured key."""
    return masking_relation_sql(meta, load_masking_policy(meta), masking_key())


def masked_columns(policy: PiiColumns, schema_by_asset: Mapping[str, dict[str, str]]) -> dict:
    """asset -> column -> concrete rule, for the columns that exist (for records and metadata)."""
    out: dict[str, dict[str, str]] = {}
    for asset, rules in policy.items():
        schema = schema_by_asset.get(asset)
        if not schema:
            continue
        chosen = {c: resolve_rule(r, c, schema[c]) for c, r in rules.items() if c in schema}
        if chosen:
            out[asset] = chosen
    return out


def _hex_int(start: int, width: int) -> str:
    return f"('0x' || substr({{h}}, {start}, {width}))::BIGINT"


def _fake_word(start: int) -> str:
    """Three syllables chosen by three hex digits of the digest, capitalised (e.g. `Kunime`)."""
    lists = [[s.capitalize() for s in _SYLLABLES], list(_SYLLABLES), list(_SYLLABLES)]
    return " || ".join(
        f"{_list_sql(words)}[{_hex_int(start + i, 1)} + 1]" for i, words in enumerate(lists)
    )


def _list_sql(words: list[str]) -> str:
    return "[" + ", ".join(sql_literal(w) for w in words) + "]"
