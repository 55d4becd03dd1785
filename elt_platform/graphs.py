"""The one graph walk: everything reachable from some nodes by following one step at a time
(downstream assets, lineage edges). Dependency-free, so any layer can use it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

Node = TypeVar("Node")


def closure(start: Iterable[Node], step: Callable[[Node], Iterable[Node]]) -> set[Node]:
    """`start` and every node reachable from it through `step` (each node visited once)."""
    seen, todo = set(start), list(start)
    while todo:
        for nxt in step(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def children_of(parents: Mapping[Node, Iterable[Node]]) -> dict[Node, list[Node]]:
    """Invert a node -> parents mapping into node -> children."""
    children: dict[Node, list[Node]] = {}
    for node, ups in parents.items():
        for up in ups:
            children.setdefault(up, []).append(node)
    return children
