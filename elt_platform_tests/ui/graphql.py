"""A small GraphQL client for the Dagster webserver the UI tests start (urllib only)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

LOCATION = "elt_platform"
REPOSITORY = "__repository__"


class DagsterGraphQL:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def query(self, text: str, variables: dict | None = None, timeout: float = 120) -> dict:
        request = urllib.request.Request(
            self.base + "/graphql",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"query": text, "variables": variables or {}}).encode(),
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            out = json.load(response)
        if out.get("errors"):
            raise AssertionError(f"GraphQL errors: {out['errors']}")
        return out["data"]

    def launch(
        self,
        job: str,
        *,
        run_config: dict | None = None,
        tags: dict[str, str] | None = None,
        assets: list[str] | None = None,
    ) -> str:
        """Launch a run as the UI does; returns its id (raises with the error otherwise)."""
        params: dict[str, Any] = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": job,
                **({"assetSelection": [{"path": a.split("/")} for a in assets]} if assets else {}),
            },
            "runConfigData": run_config or {},
            "executionMetadata": {
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]
            },
        }
        data = self.query(
            """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
                __typename
                ... on LaunchRunSuccess { run { runId } }
                ... on PythonError { message }
                ... on RunConfigValidationInvalid { errors { message } }
                ... on InvalidSubsetError { message }
            } }""",
            {"p": params},
        )["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            raise AssertionError(f"launch failed: {data}")
        return data["run"]["runId"]

    def run(self, run_id: str) -> dict:
        return self.query(
            """query($id: ID!) { runOrError(runId: $id) { ... on Run {
                status tags { key value } } } }""",
            {"id": run_id},
        )["runOrError"]

    def wait_run(self, run_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s")
            time.sleep(1)

    def run_messages(self, run_id: str) -> list[str]:
        data = self.query(
            """query($id: ID!) { logsForRun(runId: $id, limit: 1000) {
                ... on EventConnection { events { __typename ... on MessageEvent { message } } }
            } }""",
            {"id": run_id},
        )
        return [e.get("message") or "" for e in data["logsForRun"]["events"]]

    def partition_status(self, asset: str) -> dict[str, list[str]]:
        data = self.query(
            """query($a: AssetKeyInput!) { assetNodeOrError(assetKey: $a) { ... on AssetNode {
                assetPartitionStatuses { __typename ... on DefaultPartitionStatuses {
                    materializedPartitions failedPartitions unmaterializedPartitions
                    materializingPartitions } } } } }""",
            {"a": {"path": asset.split("/")}},
        )
        statuses = data["assetNodeOrError"]["assetPartitionStatuses"]
        return {
            k: statuses[k]
            for k in (
                "materializedPartitions",
                "failedPartitions",
                "unmaterializedPartitions",
                "materializingPartitions",
            )
        }

    def skip_reasons(self, sensor: str, limit: int = 20) -> list[str | None]:
        data = self.query(
            """query($s: SensorSelector!, $n: Int) { sensorOrError(sensorSelector: $s) {
                ... on Sensor { sensorState { ticks(limit: $n) { status skipReason } } } } }""",
            {
                "s": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "sensorName": sensor,
                },
                "n": limit,
            },
        )
        return [t["skipReason"] for t in data["sensorOrError"]["sensorState"]["ticks"]]
