"""`elt lineage ASSET[.COLUMN] [--release R]`: table or column lineage, with sensitivity along
the way; with a release, the versions behind the asset down to the source datasets."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from elt_platform.settings import load_settings

if TYPE_CHECKING:  # start-up cost: lineage parses SQL (sqlglot); only its commands import it
    from elt_platform.project.column_lineage import ColumnRef
    from elt_platform.project.lineage import LineageGraph

console = Console(width=None if sys.stdout.isatty() else 200)


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)


def lineage(
    target: str = typer.Argument(..., help="ASSET or ASSET.COLUMN, e.g. customers.email."),
    upstream: bool = typer.Option(False, "--upstream", help="Only what it is computed from."),
    downstream: bool = typer.Option(False, "--downstream", help="Only what is computed from it."),
    release: str = typer.Option(
        None, "--release", help="Also show the versions behind it in a release, down to sources."
    ),
) -> None:
    """Print where an asset or column comes from and what uses it."""
    from elt_platform.project.column_lineage import ColumnRef
    from elt_platform.project.lineage import load_lineage

    settings = load_settings()
    graph = load_lineage(settings)
    asset, column = graph.resolve(target)
    both = not upstream and not downstream
    if column is None:
        _print_asset(graph, asset, up=upstream or both, down=downstream or both)
    else:
        _print_column(graph, ColumnRef(asset, column), up=upstream or both, down=downstream or both)
    if release:
        _print_release(settings, release, asset, up=upstream or both, down=downstream or both)


def _print_release(settings, release: str, asset: str, *, up: bool, down: bool) -> None:
    """The versions behind `asset` in a release, to the source datasets, and what they feed."""
    from elt_platform.access.facade import open_warehouse
    from elt_platform.audit.release_lineage import release_chain, release_dependents

    wh = open_warehouse(settings)
    chain = release_chain(wh, release, asset)
    tree = Tree(f"[bold]{escape(asset)}@{chain.version}[/] in release {escape(release)}")
    if up:
        _grow_versions(tree.add("computed from"), chain)
    if down:
        used = tree.add("feeds, in this release")
        for e in release_dependents(wh, release, asset):
            used.add(f"{escape(e.upstream)}@{e.upstream_version} -> {escape(e.asset)}@{e.version}")
    console.print(tree)


def _grow_versions(branch: Tree, node) -> None:
    for up in node.inputs:
        child = branch.add(f"{escape(up.asset)}@{up.version}" + (" (above)" if up.repeated else ""))
        _grow_versions(child, up)
    for source in node.sources:
        branch.add(f"source {escape(source.namespace)} {escape(source.name)}")


def _label(graph: LineageGraph, ref: ColumnRef) -> str:
    from elt_platform.project.column_lineage import ROWS

    if ref.column == ROWS:
        return f"{escape(ref.asset)} (row count)"
    declared = graph.declared_sensitivity(ref) or "-"
    effective = graph.effective_sensitivity(ref)
    text = f"[bold]{escape(str(ref))}[/] sensitivity={declared}"
    if effective == "pii" and declared != "pii":
        sources = ", ".join(str(r) for r in graph.pii_sources(ref))
        text += f" [red]derived from PII: {escape(sources)}[/]"
    elif declared == "pii":
        text += " [red]PII[/]"
    return text


def _print_column(graph: LineageGraph, ref: ColumnRef, *, up: bool, down: bool) -> None:
    root = Tree(_label(graph, ref))
    if up:
        _grow(graph, root.add("upstream"), ref, upstream=True, seen=set())
    if down:
        _grow(graph, root.add("downstream"), ref, upstream=False, seen=set())
    console.print(root)


def _grow(graph: LineageGraph, branch: Tree, ref: ColumnRef, *, upstream: bool, seen: set) -> None:
    edges = graph.upstream_edges(ref) if upstream else graph.downstream_edges(ref)
    for edge in edges:
        nxt = edge.source if upstream else edge.target
        how = f"[dim]via {edge.kind}: {escape(edge.transformation)}[/]"
        child = branch.add(f"{_label(graph, nxt)}  {how}")
        if nxt in seen:
            continue
        seen.add(nxt)
        _grow(graph, child, nxt, upstream=upstream, seen=seen)
    field = graph.source_fields.get(ref) if upstream else None
    if field is not None:
        branch.add(
            f"source [bold]{escape(field.source)}[/] ({escape(field.connector)}: "
            f"{escape(field.location)}) field {escape(field.field)}"
        )


def _print_asset(graph: LineageGraph, asset: str, *, up: bool, down: bool) -> None:
    info = graph.assets[asset]
    root = Tree(f"[bold]{escape(asset)}[/] owner={info.owner or '-'} layer={info.layer}")
    if up:
        ups = root.add(f"upstream ({', '.join(info.upstream) or 'none'} directly)")
        for name in graph.upstream_assets(asset):
            ups.add(escape(name))
    if down:
        downs = root.add("downstream")
        for name in graph.downstream_assets(asset):
            downs.add(escape(name))
    from elt_platform.project.column_lineage import ColumnRef

    cols = root.add("columns")
    for column in info.columns:
        cols.add(_label(graph, ColumnRef(asset, column)))
    console.print(root)
