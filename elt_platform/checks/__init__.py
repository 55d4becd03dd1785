"""Gates evaluated as asset checks (contract, volume, quality score) and governance compliance."""
