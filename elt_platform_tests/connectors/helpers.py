"""A small real installation per test module: its own project file (only `connectors:`), landing
folder, warehouse and Dagster instance; builds go through `build_environment` (a recorded run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from elt_platform.access.facade import open_warehouse
from elt_platform.launch.runs import BuildOutcome, build_environment
from elt_platform.orchestration.instance import open_instance
from elt_platform.settings import Settings
from elt_platform.store.versions import Version
from elt_platform.store.warehouse import Warehouse
from elt_platform_tests.conftest import make_settings


@dataclass
class Installation:
    settings: Settings

    @property
    def sources_dir(self) -> Path:
        return self.settings.sources_dir

    @property
    def wh(self) -> Warehouse:
        return open_warehouse(self.settings)

    def build(self, environment: str, source: str) -> BuildOutcome:
        return build_environment(self.settings, environment, selection=[f"raw/{source}"])

    def sandbox(self, name: str) -> str:
        self.wh.environments.create_sandbox(name, owner="tests@example.com")
        return name

    def version(self, environment: str, source: str) -> Version | None:
        return self.wh.resolve(environment).get(f"raw/{source}")

    def query(self, environment: str, source: str, select: str) -> list[tuple]:
        """Run `select` with `t` bound to the rows the environment points at."""
        version = self.version(environment, source)
        assert version is not None, f"{environment} has no version of raw/{source}"
        con = duckdb.connect()
        try:
            return con.execute(f"WITH t AS (SELECT * FROM {version.scan_sql}) {select}").fetchall()
        finally:
            con.close()

    def step_attempts(self, run_id: str) -> int:
        """How many times the run's step started (1 + Dagster retries)."""
        events = open_instance(self.settings).all_logs(run_id)
        return sum(
            1
            for e in events
            if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_START"
        ) + sum(
            1
            for e in events
            if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_RESTARTED"
        )

    def materialization_metadata(self, run_id: str) -> dict:
        for e in open_instance(self.settings).all_logs(run_id):
            if e.dagster_event is not None and e.dagster_event.is_step_materialization:
                m = e.dagster_event.event_specific_data.materialization
                return {k: getattr(v, "value", v) for k, v in m.metadata.items()}
        raise AssertionError(f"run {run_id} recorded no materialization")

    def event_text(self, run_id: str) -> str:
        """Everything the run recorded, as text (to check what was and was not logged)."""
        return "\n".join(repr(e) for e in open_instance(self.settings).all_logs(run_id))


def make_installation(root: Path, sources: dict[str, dict]) -> Installation:
    landing = root / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    config = root / "elt_project.yml"
    config.write_text(yaml.safe_dump({"connectors": {"sources": sources}}, sort_keys=False))
    settings = make_settings(
        root / "home", ELT_SOURCES_DIR=str(landing), ELT_PROJECT_FILE=str(config)
    )
    return Installation(settings)
