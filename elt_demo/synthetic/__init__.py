"""Deterministic synthetic source data for the demo shop: generation and landing files."""

from elt_demo.synthetic.generator import SyntheticSpec, generate_frames
from elt_demo.synthetic.landing import LandingDirError, raw_views_sql, write_landing

__all__ = [
    "LandingDirError",
    "SyntheticSpec",
    "generate_frames",
    "raw_views_sql",
    "write_landing",
]
