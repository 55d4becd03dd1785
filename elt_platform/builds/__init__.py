"""Builds: deciding what to recompute (the planner) from recorded build lineage."""
