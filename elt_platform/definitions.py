"""The Dagster code location: `dagster dev`, the webserver and the daemon load `defs` from here."""

from elt_platform.assembly import build_definitions

defs = build_definitions()
