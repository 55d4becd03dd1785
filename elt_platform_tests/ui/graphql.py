"""A small GraphQL client for the Dagster webserver the UI tests start (urllib only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
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

    def wait_ready(self, timeout: float, alive: Callable[[], bool], log: Path) -> None:
        """Wait until the webserver answers and has loaded the code location."""
        deadline = time.monotonic() + timeout
        probe = """query($r: RepositorySelector!) { repositoryOrError(repositorySelector: $r) {
            __typename } }"""
        selector = {"r": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}}
        while True:
            if not alive():
                raise AssertionError(f"`elt dev` exited:\n{log.read_text()[-3000:]}")
            try:
                if (
                    self.query(probe, selector, timeout=10)["repositoryOrError"]["__typename"]
                    == "Repository"
                ):
                    return
            except (OSError, urllib.error.URLError, AssertionError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no Dagster UI after {timeout}s:\n{log.read_text()[-3000:]}")
            time.sleep(2)

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
                runId status tags { key value } } } }""",
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
        """Every event message of the run, each followed by its error and causes, if any."""
        data = self.query(
            """query($id: ID!) { logsForRun(runId: $id, limit: 1000) {
                ... on EventConnection { events { __typename
                    ... on MessageEvent { message }
                    ... on ErrorEvent { error { message causes { message } } } } }
            } }""",
            {"id": run_id},
        )
        out = []
        for event in data["logsForRun"]["events"]:
            out.append(event.get("message") or "")
            error = event.get("error")
            if error:
                out.append(error["message"])
                out.extend(c["message"] for c in error.get("causes") or [])
        return out

    def run_messages_text(self, run: dict) -> str:
        return "\n".join(self.run_messages(run["runId"]))

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
        return [t["skipReason"] for t in self.sensor_ticks(sensor, limit)]

    def sensor_ticks(self, sensor: str, limit: int = 20) -> list[dict[str, Any]]:
        """The sensor's latest ticks, newest first: `status`, `timestamp` (when its evaluation
        started, epoch seconds) and `skipReason`."""
        data = self.query(
            """query($s: SensorSelector!, $n: Int) { sensorOrError(sensorSelector: $s) {
                ... on Sensor { sensorState { ticks(limit: $n) {
                    status timestamp skipReason } } } } }""",
            {
                "s": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "sensorName": sensor,
                },
                "n": limit,
            },
        )
        return data["sensorOrError"]["sensorState"]["ticks"]

    def add_partition(self, key: str, partitions_def: str = "environment") -> None:
        data = self.query(
            """mutation($r: RepositorySelector!, $p: String!, $k: String!) {
                addDynamicPartition(repositorySelector: $r, partitionsDefName: $p,
                    partitionKey: $k) { __typename ... on PythonError { message } } }""",
            {
                "r": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
                "p": partitions_def,
                "k": key,
            },
        )["addDynamicPartition"]
        assert data["__typename"] == "AddDynamicPartitionSuccess", data

    def materializations(self, asset: str, partition: str | None = None, limit: int = 5):
        """The asset's latest materializations (optionally of one partition), newest first, each
        as {runId, partition, description, metadata: {label: value}}."""
        data = self.query(
            """query($a: AssetKeyInput!, $p: [String!], $n: Int) {
                assetOrError(assetKey: $a) { ... on Asset {
                    assetMaterializations(partitions: $p, limit: $n) {
                        runId partition description
                        metadataEntries { label __typename
                            ... on TextMetadataEntry { text }
                            ... on MarkdownMetadataEntry { mdStr }
                            ... on IntMetadataEntry { intValue }
                            ... on FloatMetadataEntry { floatValue }
                            ... on BoolMetadataEntry { boolValue }
                            ... on JsonMetadataEntry { jsonString }
                            ... on TableSchemaMetadataEntry { schema { columns {
                                name tags { key value } } } }
                        } } } } }""",
            {"a": {"path": asset.split("/")}, "p": [partition] if partition else None, "n": limit},
        )
        out = []
        for mat in data["assetOrError"]["assetMaterializations"]:
            metadata: dict[str, Any] = {}
            for entry in mat["metadataEntries"]:
                values = [v for k, v in entry.items() if k not in ("label", "__typename")]
                metadata[entry["label"]] = values[0] if values else entry["__typename"]
            out.append({**mat, "metadata": metadata})
        return out

    def partition_keys(self, asset: str) -> list[str]:
        data = self.query(
            """query($a: AssetKeyInput!) { assetNodeOrError(assetKey: $a) {
                ... on AssetNode { partitionKeys } } }""",
            {"a": {"path": asset.split("/")}},
        )
        return data["assetNodeOrError"]["partitionKeys"]

    def check_names(self, asset: str) -> list[str]:
        data = self.query(
            """query($a: AssetKeyInput!) { assetNodeOrError(assetKey: $a) { ... on AssetNode {
                assetChecksOrError { ... on AssetChecks { checks { name } } } } } }""",
            {"a": {"path": asset.split("/")}},
        )
        return [c["name"] for c in data["assetNodeOrError"]["assetChecksOrError"]["checks"]]

    def check_partition_statuses(self, asset: str) -> dict[str, dict[str, list[str]]]:
        """check name -> {succeededPartitions, failedPartitions, ...} of the asset's checks."""
        data = self.query(
            """query($a: AssetKeyInput!) { assetNodeOrError(assetKey: $a) { ... on AssetNode {
                assetChecksOrError { ... on AssetChecks { checks { name partitionStatuses {
                    ... on AssetCheckDefaultPartitionStatuses {
                        succeededPartitions failedPartitions executionFailedPartitions } } } } }
            } } }""",
            {"a": {"path": asset.split("/")}},
        )
        checks = data["assetNodeOrError"]["assetChecksOrError"]["checks"]
        return {c["name"]: c["partitionStatuses"] or {} for c in checks}
