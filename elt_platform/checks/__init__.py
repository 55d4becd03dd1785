"""Promotion gates evaluated as asset checks: contract (pandera), volume, and a quality score."""
