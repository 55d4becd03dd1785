"""Data contracts: one versioned YAML per dataset, the source of truth for its structure."""
