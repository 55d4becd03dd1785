"""The root of the code location: each domain contributes its Definitions, merged here, plus the
one job that spans them all (build an environment). Nothing is resolved at import time."""

from __future__ import annotations

import dagster as dg

from elt_platform.audit import defs as audit
from elt_platform.connectors import defs as connectors
from elt_platform.dbt import defs as dbt
from elt_platform.governance import defs as governance
from elt_platform.orchestration import defs as orchestration
from elt_platform.orchestration.names import BUILD_JOB, CODE_VERSION_TAG
from elt_platform.orchestration.partitions import environment_partitions
from elt_platform.project.code_version import current_code_version
from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.promotion import defs as promotion
from elt_platform.sandboxes import defs as sandboxes
from elt_platform.settings import Settings, load_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or load_settings()
    # Every domain reads the project's declarations from its manifest: parse it first (only
    # when a project file changed since the last parse).
    prepare_manifest(load_dbt_project(settings))
    build_job = dg.define_asset_job(
        BUILD_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=environment_partitions,
        description="Materialize assets in one environment (staging or a sandbox).",
        tags={CODE_VERSION_TAG: current_code_version(settings.dbt_project_dir).label},
    )
    holder: list[dg.Definitions] = []
    defs = dg.Definitions.merge(
        orchestration.defs(settings),
        connectors.defs(settings),
        dbt.defs(settings, observers=sandboxes.run_observers),
        sandboxes.defs(),
        # Promotion judges the asset graph of these very definitions, resolved once they exist.
        promotion.defs(lambda: holder[0].resolve_asset_graph()),
        governance.defs(),
        audit.defs(settings),
        dg.Definitions(jobs=[build_job], executor=dg.in_process_executor),
    )
    holder.append(defs)
    return defs
