"""The promotion sensor: when staging holds a complete release whose gates all passed for exactly
those versions, request a promotion run; otherwise say precisely what blocks it."""

import dagster as dg

from elt_platform.environments import PROD
from elt_platform.orchestration.names import (
    BLOCKED,
    CODE_VERSION_TAG,
    NOTHING_TO_PROMOTE,
    PROMOTE_JOB,
    PROMOTION_SENSOR,
    ROLLBACK_JOB,
)
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.project.project_file import load_promotion_policy
from elt_platform.promotion.candidate import evaluate_candidate
from elt_platform.promotion.jobs import PROMOTION_SENSOR_IDENTITY, AssetGraphSource
from elt_platform.store.releases import Release


def build_promotion_sensor(asset_graph: AssetGraphSource) -> dg.SensorDefinition:
    @dg.sensor(
        name=PROMOTION_SENSOR,
        job_name=PROMOTE_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Promotes staging to prod when every asset's blocking gates passed.",
    )
    def promotion_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        wh = warehouse.warehouse
        policy = load_promotion_policy(wh.settings)
        contracts = contracts_for(wh.settings)
        graph = asset_graph()
        cand = evaluate_candidate(wh, context.instance, graph, policy, contracts)
        prod = wh.environments.pointers(PROD)
        if cand.manifest and all(prod.get(a) == v for a, v in cand.manifest.items()):
            current = wh.releases.current()
            return dg.SkipReason(
                f"{NOTHING_TO_PROMOTE}: prod already serves {cand.source_environment}'s versions "
                f"(release {current.release_id if current else '-'})"
            )
        if not cand.eligible:
            shown = cand.problems[:8]
            more = len(cand.problems) - len(shown)
            return dg.SkipReason(
                f"{BLOCKED}: " + "; ".join(shown) + (f"; and {more} more" if more else "")
            )
        rolled_back = rolled_back_from(wh.releases.list(), wh.releases.current(), cand.manifest)
        if rolled_back is not None:
            # Its run key was used already, so Dagster would drop the request silently.
            return dg.SkipReason(
                f"{NOTHING_TO_PROMOTE}: {cand.source_environment}'s versions are release "
                f"{rolled_back.release_id}, which prod was rolled back from; launch "
                f"{ROLLBACK_JOB} with release_id {rolled_back.release_id} to serve it again"
            )
        return dg.RunRequest(
            # One promotion per distinct candidate: a rolled-back release is not re-promoted.
            run_key=cand.manifest_hash,
            run_config={
                "ops": {
                    "promote": {
                        "config": {
                            "source_environment": cand.source_environment,
                            "expected_manifest_hash": cand.manifest_hash,
                            "triggered_by": "sensor:promotion_sensor",
                        }
                    }
                }
            },
            tags={
                "elt/source_environment": cand.source_environment,
                "elt/target_environment": PROD,
                "elt/candidate": cand.manifest_hash[:16],
                CODE_VERSION_TAG: cand.code_version or "",
                **PROMOTION_SENSOR_IDENTITY,
            },
        )

    return promotion_sensor


def rolled_back_from(
    releases: list[Release], current: Release | None, candidate: dict[str, str]
) -> Release | None:
    """A release newer than prod's whose versions are the candidate's (prod was rolled back
    from it), if any: promoting it again is a roll forward, not a promotion."""
    if not candidate or current is None:
        return None
    newer = [r for r in releases if r.seq > current.seq and not r.collected_at]
    return next(
        (r for r in newer if all(r.manifest.get(a) == v for a, v in candidate.items())), None
    )
