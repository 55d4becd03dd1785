"""Audit: OpenLineage events, the metadata catalog, run history and the docs site."""
