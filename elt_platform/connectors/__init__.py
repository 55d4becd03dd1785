"""Extraction connectors: one module per connector kind, configured from sources.yaml."""
