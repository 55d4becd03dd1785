"""Data contracts: one versioned YAML per dataset (model, files, change classification)."""
