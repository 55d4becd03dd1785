"""Extraction connectors: one module per connector kind, configured in `connectors:` of
the project file."""
