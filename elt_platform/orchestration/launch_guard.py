"""The run coordinator of the installation (`dagster.yaml`): Dagster's queued coordinator plus a
check at launch. A run that would materialize assets in an environment they may not be written
in (prod, which changes only by publishing a release, or one the run's identity may not write)
is refused before it starts: it is recorded as canceled with the reason, so the partition it
targeted keeps its true status instead of turning "Failed" (Dagster marks a partition failed
only when the run that planned it ended in FAILURE).

The webserver that `elt dev` starts is a front end for the person who started it: runs launched
from it without `elt/user`/`elt/role` tags are stamped with that person's identity (the
`UI_IDENTITY_ENV` variable `elt dev` sets for the webserver only). Everywhere else an untagged
run keeps acting as the least-privileged role.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import dagster as dg
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

from elt_platform.access.facade import open_warehouse
from elt_platform.access.identity import ROLE_TAG, USER_TAG, run_identity
from elt_platform.environments import environment_from_name, require_buildable
from elt_platform.errors import EltError, InvalidEnvironmentName, UnknownEnvironment
from elt_platform.orchestration.partitions import PARTITION_TAG
from elt_platform.project.project_file import load_policies
from elt_platform.settings import load_settings

UI_IDENTITY_ENV = "ELT_UI_IDENTITY"  # JSON {"elt/user": ..., "elt/role": ...}
REFUSED_TAG = "elt/refused"


def ui_identity_tags(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The identity tags this process stamps on untagged launches (empty outside `elt dev`)."""
    raw = (os.environ if environ is None else environ).get(UI_IDENTITY_ENV)
    if not raw:
        return {}
    tags = json.loads(raw)
    return {k: str(tags[k]) for k in (USER_TAG, ROLE_TAG) if tags.get(k)}


def launch_refusal(tags: Mapping[str, str], environ: Mapping[str, str] | None = None) -> str | None:
    """Why a run with these tags may not start (None if it may): it materializes assets in a
    partition that is not buildable, or that its identity may not write."""
    partition = tags.get(PARTITION_TAG)
    if not partition:
        return None  # not an asset run partitioned by environment (promote, rollback, ...)
    try:
        env = require_buildable(environment_from_name(partition))
        settings = load_settings(environ)
        identity = run_identity(load_policies(settings), tags)
        open_warehouse(settings, identity).authorize("write", env.name)  # ledgered if denied
    except (InvalidEnvironmentName, UnknownEnvironment):
        return None  # not an environment: the run fails at once saying how to create it
    except EltError as exc:
        return str(exc)  # the message and its hint
    return None


class GuardedRunCoordinator(QueuedRunCoordinator):
    """QueuedRunCoordinator that stamps the UI identity and refuses unwritable targets."""

    def submit_run(self, context: SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        instance = self._instance
        stamp = ui_identity_tags()
        if stamp and not (run.tags.get(USER_TAG) or run.tags.get(ROLE_TAG)):
            instance.add_run_tags(run.run_id, stamp)
            run = instance.get_run_by_id(run.run_id) or run
        reason = launch_refusal(run.tags) if run.status == dg.DagsterRunStatus.NOT_STARTED else None
        if reason is None:
            return super().submit_run(SubmitRunContext(run, context.workspace))
        message = f"refused at launch, nothing ran: {reason}"
        instance.add_run_tags(run.run_id, {REFUSED_TAG: reason[:200]})
        instance.report_engine_event(message, run)
        instance.report_run_canceled(run, message=message)
        return instance.get_run_by_id(run.run_id) or run
