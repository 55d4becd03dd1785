"""Errors users can act on: every one carries a one-line message and a hint."""

from __future__ import annotations


class EltError(Exception):
    """Base of every expected platform error; the CLI prints it as one line plus a hint."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class InvalidEnvironmentName(EltError):
    hint = "use a lowercase identifier: a letter, then letters, digits or '_', at most 40 chars"


class UnknownEnvironment(EltError):
    hint = "run `elt env list` to see environments, or `elt env create NAME` to add a sandbox"


class EnvironmentExists(EltError):
    hint = "choose another name or drop the existing environment first"


class WriteNotAllowed(EltError):
    hint = "build in `staging` or a sandbox; prod changes only through `elt promote`"


class EnvironmentBusy(EltError):
    hint = "wait for the other run to finish, or cancel it in the Dagster UI"


class UnknownRelease(EltError):
    hint = "run `elt releases` to list the releases that exist"


class UnknownVersion(EltError):
    hint = "the version was never committed or has been garbage-collected"


class NothingToPublish(EltError):
    hint = "materialize the assets in the source environment first (e.g. `elt build staging`)"


class MissingDbtProject(EltError):
    hint = "set ELT_PROJECT_DIR to a dbt project folder (one holding dbt_project.yml)"


class MissingSourceData(EltError):
    hint = "run `elt sources generate` or point ELT_SOURCES_DIR at your landing folder"


class ConfigError(EltError):
    hint = "fix the configuration file named in the message"


class ContractError(EltError):
    hint = "fix the dbt YAML at the key shown (models/**/*.yml; see README: data contracts)"


class InvalidLedgerEntry(EltError):
    hint = "ledger kinds are dotted lowercase names (e.g. `release.published`) with an actor"


class InvalidQuery(EltError):
    hint = "the catalog is read-only: use a single SELECT (or WITH ... SELECT) statement"


class UnknownLineageTarget(EltError):
    hint = 'run `elt catalog query "SELECT asset FROM assets"` to list assets and columns'


class InvalidSince(EltError):
    hint = "use an ISO date or time (2026-11-02, 2026-11-02T10:00) or an age such as 30m, 12h, 7d"


class InvalidDuration(EltError):
    hint = "use a number and a unit: 90s, 30m, 12h, 7d or 2w (or `none` for no expiry)"


class ProtectedEnvironment(EltError):
    hint = "only sandboxes can be dropped; prod and staging are permanent"


class UnknownAsset(EltError):
    hint = "run `elt env show ENV` to list the assets an environment points at"


class UnknownExperiment(EltError):
    hint = "run `elt sandbox list`; archived records are kept under warehouse/experiments/archive"


class SourceDataError(EltError):
    """Malformed source data (file, page or row): retrying cannot help."""

    hint = "fix or remove the file/page/row named in the message; nothing was loaded"


class SourceUnavailable(EltError):
    """A transient source failure (timeouts, 5xx, 429, locked database) that outlived retries."""

    hint = "the source did not answer after retries; the run is retried, or try again later"


class SourceAuthError(EltError):
    hint = "check the credentials in the environment variable named in elt_project.yml (connectors)"


class SourceNotFound(EltError):
    hint = "check the url, table or endpoint of the source in elt_project.yml (connectors)"


class ReleaseCollected(UnknownRelease):
    hint = "pick a newer release from `elt releases`; collected releases cannot be restored"


class PolicyError(EltError):
    hint = "fix the `policies:` section of elt_project.yml at the line shown"


class AccessDenied(EltError):
    hint = "ask a steward for a role that allows it (`elt governance whoami` shows yours)"


class PrivacyBudgetExceeded(EltError):
    hint = "the consumer's privacy budget for this dataset is spent; raise it in elt_project.yml"


class InvalidPrivacyParameters(EltError):
    hint = "epsilon must be > 0; the Gaussian mechanism needs 0 < epsilon < 1 and 0 < delta < 1"


class QueryRefused(AccessDenied):
    hint = (
        "run one read-only SELECT over the views you may read (`elt env show ENV` lists an "
        "environment's); files, table functions and other statements are refused"
    )


class VersionTampered(EltError):
    hint = "`elt audit verify --data` lists every damaged version"


class ServiceUnavailable(EltError):
    """A server the platform depends on (PostgreSQL) did not answer or refused the credentials;
    the message names the service, the hint what to check."""

    hint = "check the URL in your settings (host, port, database, user, password) and the server"


class InvalidServiceUrl(EltError):
    hint = "ELT_METADATA_URL / ELT_DAGSTER_STORAGE_URL: postgresql://USER:PASSWORD@HOST:PORT/DB"


class ObjectStoreUnavailable(EltError):
    """The object store holding versions (ELT_VERSIONS_URL) did not answer, refused the
    credentials or has no such bucket; the message names the store, the hint what to check."""

    hint = "check ELT_VERSIONS_URL (bucket, prefix, endpoint_url) and the store's credentials"


class InvalidObjectStoreUrl(EltError):
    hint = (
        "ELT_VERSIONS_URL: an fsspec URL such as s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, "
        "az://CONTAINER/PREFIX or file:///shared/versions, with the protocol's library installed"
    )
