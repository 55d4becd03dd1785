"""Which rows reference which: the project's declared relationships, followed to where data lives.

A relationship `child.column -> parent.field` comes from a dbt `relationships` test or a
`foreign_key` constraint (read by `project/manifest.py`). When both columns pass unchanged (an
identity, a rename or a bare cast, through any number of models) from assets with no upstream
(raw tables, seeds), the relationship also holds there: retention then cascades where the data
lives, so a rebuild cannot bring an orphan back. The child column's dbt meta `on_parent_expired`
says what happens to a row whose parent expired: `delete` (default) or `anonymize` (the column is
set to NULL). Cycles and references to nothing are reported, never guessed around.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from graphlib import TopologicalSorter

from elt_platform.errors import ConfigError
from elt_platform.project.column_lineage import ColumnRef
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.project.lineage import LineageGraph, load_lineage
from elt_platform.project.manifest import DeclaredReference, Manifest, load_manifest
from elt_platform.settings import Settings

ON_PARENT_EXPIRED = "on_parent_expired"
DELETE, ANONYMIZE = "delete", "anonymize"
# A hop that keeps a key's value: `x.col AS col` or `CAST(x.col AS type) AS col`.
_KEY_HOP = re.compile(r"^(?:(?:TRY_)?CAST\()?[\w.\"]+(?: AS [\w(), ]+\))?(?: AS [\w\"]+)?$", re.I)


@dataclass(frozen=True, order=True)
class Relationship:
    child: str
    child_column: str
    parent: str
    parent_column: str
    on_parent_expired: str = DELETE
    declared_by: str = ""
    lifted_from: str | None = None  # the declared relationship this one follows upstream

    def __str__(self) -> str:
        return f"{self.child}.{self.child_column} -> {self.parent}.{self.parent_column}"


@dataclass
class Relationships:
    relationships: tuple[Relationship, ...] = ()
    cycles: tuple[tuple[str, ...], ...] = ()  # assets referencing each other, round
    unresolved: tuple[str, ...] = ()  # references whose target is no asset of the project
    _cyclic: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self._cyclic = {a for cycle in self.cycles for a in cycle}

    def in_cycle(self, relationship: Relationship) -> bool:
        return relationship.child in self._cyclic and relationship.parent in self._cyclic

    def acyclic(self) -> list[Relationship]:
        return [r for r in self.relationships if not self.in_cycle(r)]

    def parents_of(self, asset: str) -> list[Relationship]:
        """Acyclic relationships in which `asset` is the child."""
        return [r for r in self.acyclic() if r.child == asset]

    def order(self, assets: Iterable[str]) -> list[str]:
        """`assets` with every parent before its children (assets in a cycle keep no order)."""
        graph: dict[str, set[str]] = {a: set() for a in assets}
        for r in self.acyclic():
            graph.setdefault(r.child, set()).add(r.parent)
            graph.setdefault(r.parent, set())
        wanted = set(assets)
        return [a for a in TopologicalSorter(graph).static_order() if a in wanted]

    def problems(self) -> list[str]:
        """One sentence per cycle and unresolved reference."""
        out = [f"cycle {' -> '.join((*c, c[0]))}: not cascaded" for c in self.cycles]
        return out + [f"{u}: target is no asset of the project" for u in self.unresolved]


def relationships_from(manifest: Manifest, graph: LineageGraph | None = None) -> Relationships:
    """The declared relationships of `manifest`, plus (with `graph`) those they imply upstream."""
    declared, unresolved = [], []
    for ref in manifest.references():
        if ref.parent is None:
            unresolved.append(f"{ref.child}.{ref.child_column} -> {ref.target} ({ref.declared_by})")
            continue
        declared.append(_relationship(ref))
    found = {(r.child, r.child_column, r.parent, r.parent_column): r for r in declared}
    for r in declared if graph is not None else ():
        for lifted in _lift(r, graph):
            found.setdefault(
                (lifted.child, lifted.child_column, lifted.parent, lifted.parent_column), lifted
            )
    relationships = tuple(sorted(found.values()))
    return Relationships(relationships, _cycles(relationships), tuple(sorted(unresolved)))


def load_relationships(settings: Settings, graph: LineageGraph | None = None) -> Relationships:
    """The installation's relationships (its dbt project and column lineage)."""
    manifest = load_manifest(prepare_manifest(load_dbt_project(settings)))
    return relationships_from(manifest, graph if graph is not None else load_lineage(settings))


def _relationship(ref: DeclaredReference) -> Relationship:
    action = str(ref.child_meta.get(ON_PARENT_EXPIRED) or DELETE).lower()
    if action not in (DELETE, ANONYMIZE):
        raise ConfigError(
            f"{ref.child}.{ref.child_column}: meta {ON_PARENT_EXPIRED}: {action!r} is not "
            f"{DELETE!r} or {ANONYMIZE!r}",
            hint=f"set `{ON_PARENT_EXPIRED}: {DELETE}` or `{ANONYMIZE}` in the column's meta",
        )
    assert ref.parent is not None
    return Relationship(
        ref.child, ref.child_column, ref.parent, ref.parent_column, action, ref.declared_by
    )


def _lift(r: Relationship, graph: LineageGraph) -> list[Relationship]:
    """`r` between the assets with no upstream its two columns come from unchanged."""
    children = _key_roots(graph, ColumnRef(r.child, r.child_column))
    parents = _key_roots(graph, ColumnRef(r.parent, r.parent_column))
    return [
        Relationship(
            c.asset, c.column, p.asset, p.column, r.on_parent_expired, r.declared_by, str(r)
        )
        for c in children
        for p in parents
        if (c.asset, p.asset) != (r.child, r.parent)
    ]


def _key_roots(graph: LineageGraph, ref: ColumnRef) -> list[ColumnRef]:
    """Columns of assets without upstream whose values reach `ref` unchanged (hop by hop)."""
    roots, todo, seen = [], [ref], {ref}
    while todo:
        current = todo.pop()
        hops = [e for e in graph.upstream_edges(current) if _keeps_key(e.kind, e.steps)]
        if not hops:
            info = graph.assets.get(current.asset)
            if current != ref and info is not None and not info.upstream:
                roots.append(current)
            continue
        for edge in hops:
            if edge.source not in seen:
                seen.add(edge.source)
                todo.append(edge.source)
    return sorted(roots)


def _keeps_key(kind: str, steps: tuple[str, ...]) -> bool:
    if kind in ("identity", "rename"):
        return True
    return kind == "transformation" and all(_KEY_HOP.match(s.strip()) for s in steps)


def _cycles(relationships: Iterable[Relationship]) -> tuple[tuple[str, ...], ...]:
    """Strongly connected groups of assets (a self-reference included), Tarjan's algorithm."""
    edges: dict[str, set[str]] = {}
    for r in relationships:
        edges.setdefault(r.parent, set()).add(r.child)
        edges.setdefault(r.child, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in edges[node]:
                out.append(tuple(sorted(group)))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return tuple(sorted(out))
