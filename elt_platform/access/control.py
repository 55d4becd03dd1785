"""Access decisions: whether an identity's role lets it read, write or act, per `policies`.

Every denial raises AccessDenied and leaves an `access.denied` entry in the audit ledger.
"""

from __future__ import annotations

import duckdb

from elt_platform.access.governed_catalogs import GovernedCatalogs
from elt_platform.access.identity import Identity, identity_problem, resolve_identity
from elt_platform.access.sensitivity import SensitivityMap, declared_sensitivity
from elt_platform.environments import PROD, EnvironmentKind, kind_of
from elt_platform.errors import AccessDenied, UnknownEnvironment
from elt_platform.project.policies import Policies, RolePolicy
from elt_platform.project.project_file import load_policies
from elt_platform.settings import Settings
from elt_platform.store.ledger import LedgerKind
from elt_platform.store.warehouse import Warehouse

READ, WRITE = "read", "write"


def pattern_matches(pattern: str, environment: str, owner: str | None, user: str) -> bool:
    kind = kind_of(environment)
    if pattern in ("*", environment):
        return True
    if not pattern.startswith("sandbox:") or kind is not EnvironmentKind.SANDBOX:
        return False
    target = pattern.removeprefix("sandbox:")
    if target == "*":
        return True
    if target == "own":
        return owner is not None and owner == user
    return target == environment


class AccessControl:
    """Decides and enforces one identity's access to one warehouse."""

    def __init__(self, wh: Warehouse, settings: Settings, identity: Identity | None) -> None:
        self.wh = wh
        self.settings = settings
        self._identity = identity
        # Owners of environments this caller dropped: cleaning up after a drop (its catalog, the
        # versions it owned) is still checked against the owner it had.
        self._dropped_owners: dict[str, str | None] = {}

    @property
    def policies(self) -> Policies:
        return load_policies(self.settings)  # cached until the file changes

    def levels(self) -> SensitivityMap:
        """Declared column sensitivity (what governed catalogs mask by)."""
        return declared_sensitivity(self.settings, self.policies)

    @property
    def identity(self) -> Identity:
        return self._identity or resolve_identity(self.policies)

    def role(self) -> RolePolicy:
        return self.policies.role(self.identity.role)

    def denial(
        self, action: str, environment: str | None = None, *, owner: str | None = None
    ) -> str | None:
        """Why `action` is not allowed (None when it is)."""
        who = self.identity
        problem = identity_problem(self.policies, who)
        if problem is not None:
            return problem
        role = self.role()
        if action in (READ, WRITE):
            if environment is None:
                raise ValueError(f"{action} needs an environment")
            patterns = role.read if action == READ else role.write
            if "*" in patterns or environment in patterns:
                return None  # no owner lookup needed
            if owner is None:
                owner = self._owner(environment)
            if any(pattern_matches(p, environment, owner, who.user) for p in patterns):
                return None
            allowed = ", ".join(patterns) or "nothing"
            sandbox = kind_of(environment) is EnvironmentKind.SANDBOX
            whose = f" (owned by {owner})" if owner and sandbox else ""
            return (
                f"{who.user} ({who.role}) may not {action} {environment!r}{whose}; "
                f"{who.role} may {action}: {allowed}"
            )
        if action in role.actions:
            return None
        return f"{who.user} ({who.role}) may not {action.replace('_', ' ')}"

    def check(
        self, action: str, environment: str | None = None, *, owner: str | None = None
    ) -> None:
        """Raise AccessDenied (after recording it in the ledger) unless `action` is allowed."""
        reason = self.denial(action, environment, owner=owner)
        if reason is not None:
            if owner is None and environment is not None and action in (READ, WRITE):
                owner = self._owner(environment)
            self.refuse(action, environment, reason, owner=owner)

    def check_identity(self) -> None:
        """Refuse (ledgered) an identity that may not act at all (see identity_problem)."""
        problem = identity_problem(self.policies, self.identity)
        if problem is not None:
            self.refuse("act", None, problem)

    def reads_everything(self) -> bool:
        return identity_problem(self.policies, self.identity) is None and "*" in self.role().read

    def version_denial(self, asset: str, version_id: str) -> str | None:
        """Why the caller may not read a version's metadata (None when they may): it is readable
        by whoever may read an environment that points at it or built it, or prod when a release
        holds it."""
        if self.reads_everything():
            return None
        problem = identity_problem(self.policies, self.identity)
        if problem is not None:
            return problem
        with self.wh.meta.read() as con:
            places = {
                r[0]
                for r in con.execute(
                    "SELECT environment FROM env_pointers WHERE asset = ? AND version_id = ?"
                    " UNION SELECT environment FROM versions WHERE asset = ? AND version_id = ?"
                    " UNION SELECT ? FROM release_entries WHERE asset = ? AND version_id = ?",
                    (asset, version_id, asset, version_id, PROD, asset, version_id),
                )
            }
        if any(self.denial(READ, env) is None for env in sorted(places)):
            return None
        who = self.identity
        return (
            f"{who.user} ({who.role}) may not read version {version_id} of {asset} "
            f"(it belongs to {', '.join(sorted(places)) or 'no environment'})"
        )

    def check_version_read(self, asset: str, version_id: str) -> None:
        reason = self.version_denial(asset, version_id)
        if reason is not None:
            self.refuse(READ, None, reason)

    def refuse(
        self,
        action: str,
        environment: str | None,
        reason: str,
        *,
        owner: str | None = None,
        error: type[AccessDenied] = AccessDenied,
        message: str | None = None,
    ) -> None:
        """Record a denial in the ledger and raise `error` (AccessDenied by default)."""
        who = self.identity
        self.wh.ledger.append(
            LedgerKind.ACCESS_DENIED,
            actor=who.actor,
            environment=environment,
            params={
                "action": action,
                "user": who.user,
                "role": who.role,
                "identity_source": who.source,
                "owner": owner,
                "reason": reason,
            },
        )
        raise error(message or f"access denied: {reason}")

    def masked_levels(self) -> frozenset[str]:
        return self.role().masked_levels

    def check_row_comparison(self, environments: list[str], masks_pii: bool) -> None:
        """A diff prints example rows: read access to every side, and for a role that may not
        see some levels, only comparisons the engine masks (PII, against a sandbox) and nothing
        else restricted."""
        for env in environments:
            self.check(READ, env)
        masked = self.masked_levels()
        if masked - {"pii"} or ("pii" in masked and not masks_pii):
            who = self.identity
            self.refuse(
                "diff",
                ",".join(environments),
                f"{who.user} ({who.role}) may not compare rows of {' and '.join(environments)}: "
                f"example rows would show {', '.join(sorted(masked))} values unmasked "
                "(compare against a sandbox, where PII is masked)",
            )

    def connect(self, environment: str) -> duckdb.DuckDBPyConnection:
        """A read-only connection to `environment` as this identity may see it: through views
        that mask every column whose sensitivity the role may not see (and any undeclared one)."""
        self.check(READ, environment)
        masked = self.masked_levels()
        if not masked:
            return self.wh.catalogs.connect(environment)
        return GovernedCatalogs(self.wh, masked, self.levels()).connect(environment)

    def remember_owner(self, environment: str) -> None:
        """Keep `environment`'s owner for the checks that follow its drop."""
        self._dropped_owners[environment] = self._owner(environment)

    def _owner(self, environment: str) -> str | None:
        try:
            return self.wh.environments.get(environment).owner
        except UnknownEnvironment:
            return self._dropped_owners.get(environment)
