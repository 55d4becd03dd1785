"""dbt integration: project config and manifest, translator, per-environment runner, assets."""
