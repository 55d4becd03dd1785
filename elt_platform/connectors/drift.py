"""Schema drift: compare the schema a connector saw with the dataset's contract."""

from __future__ import annotations

from dataclasses import dataclass, field

from elt_platform.project.contracts.evolution import is_widening
from elt_platform.project.contracts.model import Contract, DriftPolicy

# DuckDB type names as reported by DESCRIBE -> contract type names.
_DUCK_TO_CONTRACT = {
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "DOUBLE": "double",
    "FLOAT": "float",
    "VARCHAR": "varchar",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "HUGEINT": "bigint",
    "TINYINT": "smallint",
    "REAL": "float",
}


def contract_type(duckdb_type: str) -> str:
    upper = duckdb_type.upper()
    if upper.startswith("DECIMAL"):
        return upper.lower().replace(" ", "")
    return _DUCK_TO_CONTRACT.get(upper, duckdb_type.lower())


@dataclass(frozen=True)
class DriftReport:
    dataset: str
    added: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    retyped: tuple[tuple[str, str, str], ...] = ()  # (column, contract type, seen type)
    notes: tuple[str, ...] = field(default=())

    @property
    def drifted(self) -> bool:
        return bool(self.added or self.missing or self.retyped)

    @property
    def additive_only(self) -> bool:
        """Only new columns and/or types the contract can widen to: safe to evolve."""
        return not self.missing and all(is_widening(c, s) for _, c, s in self.retyped)

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append(f"new columns {', '.join(self.added)}")
        if self.missing:
            parts.append(f"missing columns {', '.join(self.missing)}")
        for col, expected, seen in self.retyped:
            parts.append(f"{col} is {seen}, contract says {expected}")
        return "; ".join(parts) or "no drift"

    def fingerprint(self) -> str:
        return f"{self.dataset}|{sorted(self.added)}|{sorted(self.missing)}|{sorted(self.retyped)}"


def detect_drift(contract: Contract, seen: dict[str, str]) -> DriftReport:
    """Columns added, missing or retyped in the source compared with the contract."""
    expected = {c.name: c.type for c in contract.columns}
    seen_types = {name: contract_type(t) for name, t in seen.items()}
    return DriftReport(
        dataset=contract.dataset,
        added=tuple(sorted(set(seen_types) - set(expected))),
        missing=tuple(sorted(set(expected) - set(seen_types))),
        retyped=tuple(
            sorted(
                (name, expected[name], seen_types[name])
                for name in set(expected) & set(seen_types)
                if expected[name] is not None and expected[name] != seen_types[name]
            )
        ),
    )


@dataclass(frozen=True)
class DriftDecision:
    action: str  # "accept", "fail" or "quarantine"
    reason: str


def decide(policy: DriftPolicy, report: DriftReport) -> DriftDecision:
    """What the load does about drift under the contract's policy (dlt-style modes)."""
    if not report.drifted:
        return DriftDecision("accept", "schema matches the contract")
    if policy is DriftPolicy.FREEZE:
        return DriftDecision("fail", f"schema frozen by contract: {report.describe()}")
    if policy is DriftPolicy.EVOLVE:
        if report.additive_only:
            return DriftDecision("accept", f"additive drift accepted: {report.describe()}")
        return DriftDecision("fail", f"non-additive drift cannot evolve: {report.describe()}")
    return DriftDecision(
        "quarantine", f"rows not matching the contract are quarantined: {report.describe()}"
    )
