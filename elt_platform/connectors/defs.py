"""The connectors domain's Dagster definitions: one environment-partitioned raw asset per
configured source."""

from __future__ import annotations

import dagster as dg

from elt_platform.connectors.assets import build_source_asset
from elt_platform.project.contracts.from_dbt import contracts_for, load_sources
from elt_platform.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    contracts = contracts_for(settings)
    return dg.Definitions(
        assets=[
            build_source_asset(s, settings.sources_dir, contracts.get(s.asset))
            for s in load_sources(settings)
        ]
    )
