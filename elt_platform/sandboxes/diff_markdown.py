"""A table diff as markdown for the UI (Dagster renders markdown metadata): schema changes, row
counts, rows added/removed/changed and a few example rows per kind. Bounded: the diff engine
reads each side once and keeps at most `MAX_EXAMPLES` examples per kind."""

from __future__ import annotations

from typing import Any

from elt_platform.sandboxes.row_diff import TableDiff

MAX_EXAMPLES = 5
_MAX_CELL = 40


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _rows_table(rows: list[dict[str, Any]]) -> list[str]:
    columns = list(dict.fromkeys(c for r in rows for c in r))
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |"]
    lines.append("|" + " --- |" * len(columns))
    for row in rows[:MAX_EXAMPLES]:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return lines


def diff_markdown(diff: TableDiff, against: str, this: str) -> str:
    """`this` (the sandbox) compared with `against` (e.g. "prod (release r0003-…)")."""
    out = [f"### {diff.asset}: {this} vs {against}"]
    if diff.mode == "identical" or (diff.identical and diff.left_version == diff.right_version):
        version = f" (version `{diff.left_version}`)" if diff.left_version else ""
        out.append(f"Identical to {against}{version}.")
        return "\n\n".join(out)
    out.append(f"Versions: {against} `{diff.left_version}` → {this} `{diff.right_version}`")
    if diff.schema.changed:
        schema = ["| column | change |", "| --- | --- |"]
        schema += [f"| {c} | added ({t}) |" for c, t in diff.schema.added]
        schema += [f"| {c} | removed ({t}) |" for c, t in diff.schema.removed]
        schema += [f"| {c} | {a} → {b} |" for c, a, b in diff.schema.retyped]
        out.append("**Schema**\n\n" + "\n".join(schema))
    else:
        out.append("**Schema**: unchanged")
    by = f"by key ({', '.join(diff.key)})" if diff.mode == "key" else "as whole rows"
    counts = [
        "| rows | count |",
        "| --- | ---: |",
        f"| in {against} | {diff.rows_left:,} |",
        f"| in {this} | {diff.rows_right:,} |",
        f"| added | {diff.added:,} |",
        f"| removed | {diff.removed:,} |",
    ]
    if diff.changed is not None:
        counts.append(f"| changed | {diff.changed:,} |")
    out.append(f"**Rows** (compared {by})\n\n" + "\n".join(counts))
    changed_columns = {c: n for c, n in diff.column_changes.items() if n}
    if changed_columns:
        out.append(
            "**Changed columns**: "
            + ", ".join(f"{c} ({n:,})" for c, n in sorted(changed_columns.items()))
        )
    for kind, rows in diff.examples.items():
        if kind == "changed":  # {"key": {...}, "changes": {column: [old, new]}} per row
            rows = [
                {
                    **r["key"],
                    "changes": "; ".join(f"{c}: {a} → {b}" for c, (a, b) in r["changes"].items()),
                }
                for r in rows
            ]
        if rows:
            shown = min(len(rows), MAX_EXAMPLES)
            out.append(f"**Examples: {kind}** ({shown})\n\n" + "\n".join(_rows_table(rows)))
    out.extend(f"_{note}_" for note in diff.notes)
    return "\n\n".join(out)
