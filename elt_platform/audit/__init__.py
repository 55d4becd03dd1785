"""Audit: ledger, lineage, OpenLineage events, catalog views and the docs site."""
