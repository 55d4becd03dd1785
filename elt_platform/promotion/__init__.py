"""Write-audit-publish: release candidates, gates, the promotion sensor and jobs, rollback, GC."""
