"""Names of the platform's jobs, sensors and run tags: shared by the domains that define them and
the ones that react to them, so no domain imports another to learn a name."""

BUILD_JOB = "build_environment"
PROMOTE_JOB = "promote_release"
ROLLBACK_JOB = "rollback_prod"
GC_JOB = "collect_garbage"
CREATE_SANDBOX_JOB = "create_sandbox"
PRUNE_SANDBOXES_JOB = "prune_sandboxes"
RETENTION_JOB = "enforce_retention"
PROMOTION_SENSOR = "promotion_sensor"
# The promotion sensor's skip reasons start with one of these, so a tick answers "idle or
# stuck?" at a glance (the UI's tick dialog, GraphQL `ticks { skipReason }`, `elt promote`).
NOTHING_TO_PROMOTE = "nothing to promote"
BLOCKED = "blocked"
PROD_RELEASE_ASSET = "prod_release"  # one materialization per prod move

CODE_VERSION_TAG = "elt/code_version"
ENVIRONMENT_TAG = "elt/environment"
