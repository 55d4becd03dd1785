"""The one reader of a dbt manifest: every fact the platform takes from dbt is read here.

Each rule has one owner: how `meta` and `config.meta` merge, which asset key a node gets (the
translator delegates to `asset_key`, so Dagster and every other reader agree), which relation it
lives in, which layer it belongs to, which columns it declares, which vars its SQL reads, which
columns it tests unique, which columns reference which (`relationships` tests, `foreign_key`
constraints), a node's code version (its SQL, the macros it calls and the ephemeral
models inlined into it), and which assets each test (data or unit) gates. Reading it never imports
Dagster or dbt (both take seconds to import).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

Node = Mapping[str, Any]
# Resource types that become assets with data (tests, analyses, operations do not).
DATA_KINDS = frozenset({"model", "seed", "snapshot", "source"})
BUILT_KINDS = frozenset({"model", "seed", "snapshot"})
# Materializations whose next build reads their previous content (`{{ this }}`).
STATEFUL = frozenset({"incremental", "snapshot"})
# Config keys that do not change what a node computes (a change must not force a rebuild).
_NON_COMPUTING_CONFIG = frozenset(
    {"meta", "tags", "docs", "group", "access", "persist_docs", "grants", "packages", "enabled"}
)
_VAR_CALL = re.compile(r"""\bvar\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")
# `ref('name')`, `ref('package', 'name')`, `source('source', 'table')` as dbt YAML writes a target.
_TARGET_CALL = re.compile(r"""\b(ref|source)\(\s*((?:['"][^'"]+['"]\s*,?\s*)+)""")
_QUOTED = re.compile(r"""['"]([^'"]+)['"]""")


def node_meta(node: Node) -> dict[str, Any]:
    """A node's `meta`, with `config.meta` winning key by key (dbt keeps both spellings)."""
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def column_meta(column: Node) -> dict[str, Any]:
    """A column's `meta`, with its `config.meta` winning key by key."""
    return node_meta(column)


def asset_key(node: Node) -> str:
    """The asset key of a node as a `/`-joined string: `meta.dagster.asset_key` when set, else
    `source_name/name` for sources, the alias for versioned models, `schema/name` when the node
    configures its own schema, else its name (dagster-dbt's default rule)."""
    configured = (node_meta(node).get("dagster") or {}).get("asset_key")
    if configured:
        return "/".join(configured)
    if node.get("resource_type") == "source":
        return f"{node['source_name']}/{node['name']}"
    if node.get("version"):
        return node["alias"]
    schema = (node.get("config") or {}).get("schema")
    return f"{schema}/{node['name']}" if schema else node["name"]


def relation(node: Node) -> tuple[str, str]:
    """(schema, identifier) of the relation dbt builds or reads for a node."""
    return node["schema"], node.get("alias") or node.get("identifier") or node["name"]


def layer(node: Node) -> str:
    """`raw` for sources, else the first folder under models/ (`staging`, `marts`, ...)."""
    if node.get("resource_type") == "source":
        return "raw"
    fqn = node.get("fqn") or []
    return fqn[1] if len(fqn) > 2 else "models"


def vars_read(node: Node) -> set[str]:
    """Names of the dbt vars a node's own SQL reads with `var('name' ...)`."""
    return set(_VAR_CALL.findall(node.get("raw_code") or node.get("raw_sql") or ""))


def materialization(node: Node) -> str:
    """`view`, `table`, `incremental`, `ephemeral`, `seed`, `snapshot` or `source`."""
    kind = node.get("resource_type")
    if kind in {"seed", "snapshot", "source"}:
        return str(kind)
    return str((node.get("config") or {}).get("materialized") or "view")


def is_ephemeral(node: Node) -> bool:
    return node.get("resource_type") == "model" and materialization(node) == "ephemeral"


@dataclass(frozen=True)
class TestGate:
    """A dbt data test or unit test and the assets whose builds it gates."""

    unique_id: str
    name: str
    assets: tuple[str, ...]  # every data parent (ephemeral parents resolved to theirs)
    attached: str | None  # the parent dagster-dbt attaches it to as a check, if any
    blocking: bool
    unit: bool = False


@dataclass(frozen=True)
class DeclaredReference:
    """`child.child_column` references `parent.parent_column`, as the project declares it."""

    child: str
    child_column: str
    parent: str | None  # None: the target (`to`) names no node of the project
    parent_column: str
    declared_by: str  # the test's or constraint's name
    target: str  # `to` as written
    child_meta: dict[str, Any] = field(default_factory=dict)  # the child column's meta


@dataclass(frozen=True)
class DeclaredColumn:
    name: str
    data_type: str | None
    description: str
    meta: dict[str, Any]

    @property
    def sensitivity(self) -> str | None:
        level = self.meta.get("sensitivity")
        return str(level).lower() if level else None


def declared_columns(node: Node) -> dict[str, DeclaredColumn]:
    """Columns a node's YAML declares (possibly only some of its real columns)."""
    return {
        name: DeclaredColumn(
            name, spec.get("data_type"), (spec.get("description") or "").strip(), column_meta(spec)
        )
        for name, spec in (node.get("columns") or {}).items()
    }


class Manifest:
    """A parsed manifest with the platform's reading of it."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    @property
    def nodes(self) -> Mapping[str, Node]:
        return self.data.get("nodes", {})

    @property
    def sources(self) -> Mapping[str, Node]:
        return self.data.get("sources", {})

    def data_nodes(self, kinds: frozenset[str] = DATA_KINDS) -> Iterator[tuple[str, Node]]:
        """(unique_id, node) of every node that is an asset with data."""
        for uid, node in [*self.nodes.items(), *self.sources.items()]:
            if node.get("resource_type") in kinds:
                yield uid, node

    @cached_property
    def asset_keys(self) -> dict[str, str]:
        """unique_id -> asset key of every data node."""
        return {uid: asset_key(node) for uid, node in self.data_nodes()}

    @cached_property
    def by_asset(self) -> dict[str, Node]:
        """asset key -> node."""
        return {asset_key(node): node for _, node in self.data_nodes()}

    def relations(self) -> dict[str, tuple[str, str]]:
        """asset key -> (schema, identifier) for every data node."""
        return {asset_key(node): relation(node) for _, node in self.data_nodes()}

    def node(self, unique_id: str) -> Node | None:
        """A node, source or unit test by unique id."""
        return (
            self.nodes.get(unique_id)
            or self.sources.get(unique_id)
            or self.data.get("unit_tests", {}).get(unique_id)
        )

    def vars_read_by_asset(self) -> dict[str, set[str]]:
        """asset key -> vars its SQL reads, for every node dbt builds: its own SQL, the macros it
        calls and the ephemeral models inlined into it."""
        out = {}
        for uid, node in self.data_nodes(BUILT_KINDS):
            if is_ephemeral(node):
                continue
            found = set()
            for part in self._code_parts(uid):
                found |= set(_VAR_CALL.findall(part))
            out[asset_key(node)] = found
        return out

    def materializations(self) -> dict[str, str]:
        """asset key -> materialization of every data node (see `materialization`)."""
        return {asset_key(n): materialization(n) for _, n in self.data_nodes()}

    def code_version(self, unique_id: str) -> str:
        """What a build of the node computes with: its SQL (or seed file checksum), the config
        that changes results, the macros it calls and the ephemeral models inlined into it."""
        return hashlib.sha256("\x00".join(self._code_parts(unique_id)).encode()).hexdigest()[:16]

    def _code_parts(self, unique_id: str) -> list[str]:
        node = self.node(unique_id) or {}
        config = {
            k: v for k, v in (node.get("config") or {}).items() if k not in _NON_COMPUTING_CONFIG
        }
        parts = [
            node.get("raw_code") or node.get("raw_sql") or "",
            str((node.get("checksum") or {}).get("checksum", "")),
            json.dumps(config, sort_keys=True, default=str),
        ]
        for macro in sorted(self._macro_closure(unique_id)):
            parts.append((self.data.get("macros", {}).get(macro) or {}).get("macro_sql", ""))
        for parent in (node.get("depends_on") or {}).get("nodes", []):
            parent_node = self.node(parent) or {}
            if is_ephemeral(parent_node):
                parts += [f"ephemeral:{parent}", *self._code_parts(parent)]
        return parts

    def _macro_closure(self, unique_id: str) -> set[str]:
        """Macros a node calls, transitively, plus the adapter implementations they dispatch to
        (`<package>.<adapter>__<name>`, `default__<name>`), which dbt does not list."""
        macros = self.data.get("macros", {})
        by_package: dict[str, list[str]] = {}
        for mid, macro in macros.items():
            by_package.setdefault(macro.get("package_name", ""), []).append(mid)
        node = self.node(unique_id) or {}
        todo = list((node.get("depends_on") or {}).get("macros", []))
        seen: set[str] = set()
        while todo:
            mid = todo.pop()
            if mid in seen or mid not in macros:
                continue
            seen.add(mid)
            macro = macros[mid]
            todo += (macro.get("depends_on") or {}).get("macros", [])
            suffix = f"__{macro.get('name', '')}"
            todo += [
                m for m in by_package.get(macro.get("package_name", ""), []) if m.endswith(suffix)
            ]
        return seen

    def data_parents(self, unique_id: str) -> list[str]:
        """unique ids of the data nodes a node reads, with ephemeral models resolved to theirs."""
        node = self.node(unique_id) or {}
        out: list[str] = []
        for parent in (node.get("depends_on") or {}).get("nodes", []):
            parent_node = self.node(parent)
            if parent_node is None:
                continue
            if is_ephemeral(parent_node):
                out += [p for p in self.data_parents(parent) if p not in out]
            elif parent_node.get("resource_type") in DATA_KINDS and parent not in out:
                out.append(parent)
        return out

    def test_gates(self) -> list[TestGate]:
        """Every data test and unit test with the assets it gates (all of its data parents)."""
        gates = []
        tests = [(u, n, False) for u, n in self.nodes.items() if n.get("resource_type") == "test"]
        tests += [(u, n, True) for u, n in self.data.get("unit_tests", {}).items()]
        for uid, node, unit in tests:
            parents = [asset_key(self.node(p) or {}) for p in self.data_parents(uid)]
            if not parents:
                continue
            attached = node.get("attached_node")
            if attached is None and len(parents) == 1 and not unit:
                attached = self.data_parents(uid)[0]
            severity = str((node.get("config") or {}).get("severity") or "error").lower()
            gates.append(
                TestGate(
                    uid,
                    node["name"],
                    tuple(parents),
                    asset_key(self.node(attached) or {}) if attached else None,
                    blocking=severity == "error",
                    unit=unit,
                )
            )
        return gates

    def node_names(self) -> dict[str, str]:
        """asset key -> dbt node name (what `--select`/`--exclude` take)."""
        return {asset_key(n): n["name"] for _, n in self.data_nodes(BUILT_KINDS)}

    def column_levels(self) -> dict[str, dict[str, str]]:
        """asset -> column -> declared sensitivity (`meta.sensitivity`), declared columns only."""
        out: dict[str, dict[str, str]] = {}
        for _, node in self.data_nodes():
            for name, column in declared_columns(node).items():
                if column.sensitivity:
                    out.setdefault(asset_key(node), {})[name] = column.sensitivity
        return out

    def masking_rules(self, level: str = "pii") -> dict[str, dict[str, str]]:
        """asset -> column -> masking rule (`meta.masking`, else `auto`) of columns at `level`."""
        out: dict[str, dict[str, str]] = {}
        for _, node in self.data_nodes():
            for name, column in declared_columns(node).items():
                if column.sensitivity == level:
                    rule = str(column.meta.get("masking") or "auto")
                    out.setdefault(asset_key(node), {})[name] = rule
        return out

    def primary_keys(self) -> dict[str, list[str]]:
        """asset key -> key columns of every built node that declares (`meta.primary_key`) or
        tests (`unique`) one; an `_id` column is preferred among several unique ones."""
        unique_columns: dict[str, list[str]] = {}
        for node in self.nodes.values():
            test = node.get("test_metadata") or {}
            if node.get("resource_type") != "test" or test.get("name") != "unique":
                continue
            column = node.get("column_name") or (test.get("kwargs") or {}).get("column_name")
            parent = node.get("attached_node")
            if column and parent and column.isidentifier():
                unique_columns.setdefault(parent, []).append(column)
        out: dict[str, list[str]] = {}
        for uid, node in self.data_nodes(BUILT_KINDS):
            declared = node_meta(node).get("primary_key")
            if isinstance(declared, str):
                declared = [c.strip() for c in declared.split(",") if c.strip()]
            if not declared and uid in unique_columns:
                order = list((node.get("columns") or {}).keys())
                candidates = sorted(
                    unique_columns[uid],
                    key=lambda c: (not c.endswith("_id"), order.index(c) if c in order else 99),
                )
                declared = [candidates[0]]
            if declared:
                out[asset_key(node)] = list(declared)
        return out

    def references(self) -> list[DeclaredReference]:
        """Every column reference declared by a `relationships` test (kwargs `column_name`, `to`,
        `field`) or a `foreign_key` constraint (model or column level, `to` + `to_columns`)."""
        out: list[DeclaredReference] = []
        for node in self.nodes.values():
            test = node.get("test_metadata") or {}
            if node.get("resource_type") != "test" or test.get("name") != "relationships":
                continue
            kwargs = test.get("kwargs") or {}
            child = self.node(node.get("attached_node") or "") or self._target(
                str(kwargs.get("model", ""))
            )
            if child is None or not kwargs.get("column_name") or not kwargs.get("field"):
                continue
            out.append(self._reference(child, kwargs, node["name"]))
        for _, node in self.data_nodes(BUILT_KINDS):
            found = [(c, None) for c in node.get("constraints") or []]
            for name, column in (node.get("columns") or {}).items():
                found += [(c, name) for c in column.get("constraints") or []]
            for constraint, column in found:
                if constraint.get("type") != "foreign_key" or not constraint.get("to"):
                    continue
                children = [column] if column else list(constraint.get("columns") or [])
                parents = list(constraint.get("to_columns") or [])
                label = constraint.get("name") or f"foreign_key on {node['name']}"
                for child_column, parent_column in zip(children, parents, strict=False):
                    kwargs = {
                        "column_name": child_column,
                        "to": constraint["to"],
                        "field": parent_column,
                    }
                    out.append(self._reference(node, kwargs, label))
        return sorted(out, key=lambda r: (r.child, r.child_column, r.declared_by))

    def _reference(self, child: Node, kwargs: Mapping[str, Any], label: str) -> DeclaredReference:
        column = str(kwargs["column_name"]).strip('"')
        spec = (child.get("columns") or {}).get(column) or {}
        parent = self._target(str(kwargs.get("to", "")))
        return DeclaredReference(
            asset_key(child),
            column,
            asset_key(parent) if parent is not None else None,
            str(kwargs["field"]).strip('"'),
            label,
            str(kwargs.get("to", "")),
            column_meta(spec),
        )

    def _target(self, text: str) -> Node | None:
        """The node a `ref(...)`/`source(...)` call in `text` names, if the project has it."""
        match = _TARGET_CALL.search(text)
        if match is None:
            return None
        args = _QUOTED.findall(match.group(2))
        for _, node in self.data_nodes():
            if match.group(1) == "source":
                found = [node.get("source_name"), node.get("name")] == args
            else:
                found = node.get("name") == args[-1] and (
                    len(args) == 1 or node.get("package_name") == args[0]
                )
            if found and (node.get("resource_type") == "source") == (match.group(1) == "source"):
                return node
        return None


@lru_cache(maxsize=4)
def _load(path: str, stamp: tuple[int, int]) -> Manifest:
    return Manifest(json.loads(Path(path).read_text()))


def load_manifest(path: Path) -> Manifest:
    """The manifest at `path`, parsed once per change of the file (treat it as read-only)."""
    stat = Path(path).stat()
    return _load(str(path), (stat.st_mtime_ns, stat.st_size))
