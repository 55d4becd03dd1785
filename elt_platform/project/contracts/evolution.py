"""Classify the change between two versions of a contract (or two produced schemas) per column:
non-breaking (additive, widened, relaxed) or breaking (removed, renamed, narrowed, tightened)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from elt_platform.project.contracts.model import Column, Contract

_INT_RANK = {"smallint": 1, "integer": 2, "bigint": 3}
_FLOAT_RANK = {"float": 1, "double": 2}
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")


@dataclass(frozen=True)
class Change:
    dataset: str
    column: str | None
    kind: str
    breaking: bool
    detail: str

    def __str__(self) -> str:
        label = "BREAKING" if self.breaking else "non-breaking"
        where = f"{self.dataset}.{self.column}" if self.column else self.dataset
        return f"{label}: {where}: {self.kind} ({self.detail})"


def is_widening(old: str, new: str) -> bool:
    """True when every value of type `old` is representable in type `new`."""
    old, new = old.lower().replace(" ", ""), new.lower().replace(" ", "")
    if old == new:
        return True
    if old in _INT_RANK and new in _INT_RANK:
        return _INT_RANK[new] > _INT_RANK[old]
    if old in _FLOAT_RANK and new in _FLOAT_RANK:
        return _FLOAT_RANK[new] > _FLOAT_RANK[old]
    if old in {"smallint", "integer"} and new == "double":
        return True
    if old == "date" and new == "timestamp":
        return True
    mo, mn = _DECIMAL.match(old), _DECIMAL.match(new)
    if mo and mn:
        (po, so), (pn, sn) = map(int, mo.groups()), map(int, mn.groups())
        return sn >= so and (pn - sn) >= (po - so)
    if old in _INT_RANK and mn:
        digits = {"smallint": 5, "integer": 10, "bigint": 19}[old]
        p, s = map(int, mn.groups())
        return p - s >= digits
    return new == "varchar"  # everything has a text form


def _constraint_changes(dataset: str, old: Column, new: Column) -> list[Change]:
    a, b = old.constraints, new.constraints
    out: list[Change] = []

    def add(kind: str, breaking: bool, detail: str) -> None:
        out.append(Change(dataset, new.name, kind, breaking, detail))

    if a.unique != b.unique:
        add("unique " + ("added" if b.unique else "removed"), b.unique, f"{a.unique} -> {b.unique}")
    if a.min != b.min:
        tighter = b.min is not None and (a.min is None or b.min > a.min)
        add("min " + ("tightened" if tighter else "relaxed"), tighter, f"{a.min} -> {b.min}")
    if a.max != b.max:
        tighter = b.max is not None and (a.max is None or b.max < a.max)
        add("max " + ("tightened" if tighter else "relaxed"), tighter, f"{a.max} -> {b.max}")
    if a.allowed_values != b.allowed_values:
        old_v, new_v = set(a.allowed_values or []), set(b.allowed_values or [])
        if b.allowed_values is None:
            add("allowed values removed", False, "any value is now allowed")
        elif a.allowed_values is None:
            add("allowed values added", True, f"only {sorted(new_v)}")
        else:
            if old_v - new_v:
                add("allowed value removed", True, f"removed {sorted(old_v - new_v)}")
            if new_v - old_v:
                add("allowed value added", False, f"added {sorted(new_v - old_v)}")
    if a.regex != b.regex:
        add(
            "regex " + ("removed" if b.regex is None else "changed"),
            b.regex is not None,
            f"{a.regex!r} -> {b.regex!r}",
        )
    return out


def classify_contract_change(old: Contract, new: Contract) -> list[Change]:
    """Every difference between two versions of one dataset's contract, classified."""
    ds = new.dataset
    old_cols = {c.name: c for c in old.columns}
    new_cols = {c.name: c for c in new.columns}
    removed = [old_cols[n] for n in old_cols if n not in new_cols]
    added = [new_cols[n] for n in new_cols if n not in old_cols]
    changes: list[Change] = []
    # A removed and an added column of the same type at the same position read as a rename.
    renamed: set[str] = set()
    for gone in removed:
        twin = next(
            (
                c
                for c in added
                if c.type == gone.type
                and c.name not in renamed
                and old.columns.index(gone) == new.columns.index(c)
            ),
            None,
        )
        if twin is not None:
            renamed.add(twin.name)
            changes.append(Change(ds, gone.name, "renamed", True, f"{gone.name} -> {twin.name}"))
        else:
            changes.append(Change(ds, gone.name, "removed", True, f"column {gone.name} removed"))
    for col in added:
        if col.name in renamed:
            continue
        changes.append(
            Change(
                ds,
                col.name,
                "added",
                not col.nullable,
                "new nullable column" if col.nullable else "new NOT NULL column",
            )
        )
    for name in [n for n in old_cols if n in new_cols]:
        a, b = old_cols[name], new_cols[name]
        if a.type != b.type:
            widened = is_widening(a.type, b.type)
            changes.append(
                Change(
                    ds,
                    name,
                    "widened type" if widened else "narrowed type",
                    not widened,
                    f"{a.type} -> {b.type}",
                )
            )
        if a.nullable != b.nullable:
            kind = "nullable -> not null" if not b.nullable else "not null -> nullable"
            detail = f"nullable {a.nullable} -> {b.nullable}"
            changes.append(Change(ds, name, kind, not b.nullable, detail))
        changes.extend(_constraint_changes(ds, a, b))
    if old.primary_key != new.primary_key:
        changes.append(
            Change(ds, None, "primary key changed", True, f"{old.primary_key} -> {new.primary_key}")
        )
    return changes


def classify_schema_change(dataset: str, old: dict[str, str], new: dict[str, str]) -> list[Change]:
    """The same classification for schemas actually produced (column -> type), no constraints."""
    changes = [
        Change(dataset, c, "removed", True, f"column {c} removed") for c in old if c not in new
    ]
    changes += [Change(dataset, c, "added", False, "new column") for c in new if c not in old]
    for c in [c for c in old if c in new and old[c] != new[c]]:
        widened = is_widening(old[c], new[c])
        changes.append(
            Change(
                dataset,
                c,
                "widened type" if widened else "narrowed type",
                not widened,
                f"{old[c]} -> {new[c]}",
            )
        )
    return changes


def breaking_change_approved(old: Contract, new: Contract) -> bool:
    """A breaking change ships only with a major version bump and a migration note."""
    return new.major > old.major and bool((new.migration_note or "").strip())
