"""Governance: differential privacy, retention, contract changes and their jobs."""
