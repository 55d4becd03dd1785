"""The project as declared: dbt project and manifest, sources, policies, contracts, lineage and
code version."""
