"""Audit: the metadata catalog, run history, version lineage of releases and the docs site."""
