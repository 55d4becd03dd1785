"""Releases as a first-class asset in the UI: `prod_release` (not partitioned) is materialized by
every promotion and rollback run that moves prod, so its history is the release history and its
latest materialization answers "what does prod serve?" (a markdown table of every asset and
version, the changed assets, the gate summary, who or what triggered it, the code version).

`PREVIOUS` is the rollback job's default release: the newest release older than the one prod
serves, resolved when the run starts (a config default is fixed when the code location loads).
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from elt_platform.errors import UnknownRelease
from elt_platform.orchestration.names import PROD_RELEASE_ASSET, ROLLBACK_JOB
from elt_platform.store.releases import PublishResult, Release

PREVIOUS = "previous"

prod_release_spec = dg.AssetSpec(
    key=PROD_RELEASE_ASSET,
    group_name="releases",
    description=(
        "What prod serves: one materialization per release published or rolled back to "
        f"(release id, changed assets, gates, trigger, code version). Roll back with the "
        f"`{ROLLBACK_JOB}` job (default: the previous release)."
    ),
    kinds={"release"},
    tags={"elt/layer": "release"},
)


def previous_release(releases: list[Release], current: Release | None) -> Release:
    """The newest live release published before `current` (what a one-step rollback targets)."""
    older = [r for r in releases if not r.collected_at and (current is None or r.seq < current.seq)]
    if current is None or not older:
        raise UnknownRelease(
            "there is no release before the one prod serves to roll back to",
            hint="the prod_release asset's history lists every release prod served",
        )
    return max(older, key=lambda r: r.seq)


def release_materialization(
    result: PublishResult,
    action: str,
    *,
    triggered_by: str,
    run_id: str,
    rows: Mapping[str, int],
) -> dg.AssetMaterialization:
    """The `prod_release` materialization of one prod move (`rows`: rows per served version)."""
    release = result.release
    summary = release.gate_summary or {}
    changed = set(result.changed_assets)
    table = ["| asset | version | rows | changed |", "| --- | --- | ---: | :---: |"]
    for asset, version in sorted(release.manifest.items()):
        mark = "yes" if asset in changed else ""
        table.append(f"| {asset} | `{version}` | {rows.get(asset, 0):,} | {mark} |")
    return dg.AssetMaterialization(
        asset_key=PROD_RELEASE_ASSET,
        description=f"{action}: prod serves release {release.release_id}",
        metadata={
            "release": release.release_id,
            "action": action,
            "previous_release": result.previous_release or "",
            "triggered_by": triggered_by,
            "source_environment": release.source_environment,
            "code_version": release.code_version or "",
            "run_id": run_id,
            "assets_served": dg.MetadataValue.int(len(release.manifest)),
            "assets_changed": dg.MetadataValue.int(len(changed)),
            "changed_assets": ", ".join(sorted(changed)) or "-",
            "checks_passed": dg.MetadataValue.int(int(summary.get("checks_passed", 0))),
            "checks_failed": dg.MetadataValue.int(int(summary.get("checks_failed", 0))),
            "gate_warnings": dg.MetadataValue.int(len(summary.get("warnings", []))),
            "gate_summary": dg.MetadataValue.json(
                {k: v for k, v in summary.items() if k != "contracts"}
            ),
            "served": dg.MetadataValue.md("\n".join(table)),
        },
        tags={"dagster/data_version": release.release_id},
    )
