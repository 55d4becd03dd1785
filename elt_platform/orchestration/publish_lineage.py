"""The OpenLineage run of a promote or rollback (job = the Dagster job, run id = the Dagster run
id): START when the op starts; COMPLETE naming every prod dataset of the release (the prod
catalog's views, versioned by the release id) with the versions it serves as inputs (and, for a
promotion, the gate results they passed); FAIL when the release was refused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
from openlineage.client.event_v2 import RunState

from elt_platform.environments import PROD
from elt_platform.orchestration.lineage_datasets import release_output, version_input
from elt_platform.orchestration.openlineage import Emitter, lineage_job
from elt_platform.orchestration.resources import WarehouseResource
from elt_platform.store.releases import PublishResult
from elt_platform.store.versions import Version


class ReleaseLineage:
    """The OpenLineage run of a promote or rollback (job = the Dagster job, run = its run id)."""

    def __init__(self, context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
        self.context = context
        self.resource = warehouse
        self.emitter = Emitter(context, warehouse.settings)
        self.job = lineage_job(context.job_name, "JOB")
        self.result: PublishResult | None = None
        self.checks: Mapping[str, Mapping[str, bool]] = {}
        self.source_environment: str | None = None

    def facets(self) -> dict[str, Any]:
        params = {"dagster_job": self.context.job_name}
        if self.result is not None:
            params.update(
                release=self.result.release.release_id,
                previous_release=self.result.previous_release or "",
                changed_assets=",".join(self.result.changed_assets),
            )
        return self.emitter.run_facets(PROD, **params)

    def start(self) -> None:
        self.emitter.guard(
            "emit START",
            lambda: self.emitter.event(
                RunState.START, self.context.run_id, self.job, self.facets()
            ),
        )

    def published(
        self,
        result: PublishResult,
        checks: Mapping[str, Mapping[str, bool]] | None = None,
        source_environment: str | None = None,
    ) -> None:
        self.result, self.checks = result, checks or {}
        self.source_environment = source_environment

    def finish(self, error: BaseException | None) -> None:
        self.emitter.guard("emit the release's COMPLETE or FAIL", lambda: self._finish(error))

    def _finish(self, error: BaseException | None) -> None:
        if error is not None or self.result is None:
            self.emitter.event(
                RunState.FAIL, self.context.run_id, self.job, self.facets(), error=error
            )
            return
        wh = self.resource.warehouse
        release = self.result.release
        versions: dict[str, Version] = {
            a: wh.versions.get(a, v) for a, v in sorted(release.manifest.items())
        }
        prod_catalog = wh.catalogs.path(PROD)
        self.emitter.event(
            RunState.COMPLETE,
            self.context.run_id,
            self.job,
            self.facets(),
            inputs=[
                version_input(v, self.source_environment, self.checks.get(a))
                for a, v in versions.items()
            ],
            outputs=[
                release_output(v, release.release_id, prod_catalog) for v in versions.values()
            ],
        )


@contextmanager
def publish_lineage(
    context: dg.OpExecutionContext, warehouse: WarehouseResource
) -> Iterator[ReleaseLineage]:
    lineage = ReleaseLineage(context, warehouse)
    lineage.start()
    try:
        yield lineage
    except BaseException as exc:
        lineage.finish(exc)
        raise
    lineage.finish(None)
