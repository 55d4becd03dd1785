"""The connectors domain's Dagster definitions: one environment-partitioned raw asset per
configured source."""

from __future__ import annotations

import dagster as dg

from elt_platform.connectors.assets import build_source_asset
from elt_platform.project.contracts.files import contracts_for
from elt_platform.project.sources import load_sources
from elt_platform.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    contracts = contracts_for(settings.contracts_dir)
    return dg.Definitions(
        assets=[
            build_source_asset(s, settings.sources_dir, contracts.get(s.asset))
            for s in load_sources(settings.sources_config)
        ]
    )
