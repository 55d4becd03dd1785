"""Governance: access policies, differential privacy, retention and compliance checks."""
