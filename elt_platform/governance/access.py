"""The enforcement layer: who is calling (identity and role) and whether the policy lets them.

Identity comes from the Dagster run tags `elt/user` and `elt/role` inside a run, else from the
environment variables ELT_USER and ELT_ROLE, else the OS user with the policy's `default_role`.
Every denial raises AccessDenied and leaves an `access.denied` entry in the audit ledger.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from elt_platform.audit.ledger import LedgerKind
from elt_platform.environments import EnvironmentKind, kind_of
from elt_platform.errors import AccessDenied, UnknownEnvironment
from elt_platform.governance.policies import OWNER_PATTERN, Policies, RolePolicy, load_policies

if TYPE_CHECKING:
    import duckdb

    from elt_platform.store.warehouse import Warehouse

USER_ENV_VAR, ROLE_ENV_VAR = "ELT_USER", "ELT_ROLE"
USER_TAG, ROLE_TAG = "elt/user", "elt/role"
READ, WRITE = "read", "write"


@dataclass(frozen=True)
class Identity:
    user: str
    role: str
    source: str  # run tags | environment | default

    @property
    def actor(self) -> str:
        """The ledger actor: `user:<name>` unless the name already says what it is (`job:gc`)."""
        return self.user if ":" in self.user else f"user:{self.user}"

    def tags(self) -> dict[str, str]:
        """Run tags that carry this identity into a Dagster run."""
        return {USER_TAG: self.user, ROLE_TAG: self.role}


def resolve_identity(
    policies: Policies,
    *,
    tags: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Identity:
    """The caller: run tags first, then ELT_USER/ELT_ROLE, then the OS user as default_role."""
    env = os.environ if environ is None else environ
    tags = tags or {}
    user, role, source = tags.get(USER_TAG), tags.get(ROLE_TAG), "run tags"
    if not (user or role):
        user, role, source = env.get(USER_ENV_VAR), env.get(ROLE_ENV_VAR), "environment"
    if not (user or role):
        source = "default"
    user = user or env.get(USER_ENV_VAR) or getpass.getuser()
    pinned = policies.users.get(user)
    role = role or (pinned[0] if pinned else policies.default_role)
    return Identity(user=user, role=role, source=source)


def current_identity() -> Identity:
    """The identity of this process (ELT_USER/ELT_ROLE or the default), resolved now."""
    return resolve_identity(load_policies())


def default_owner(identity: Identity) -> str | None:
    """The owner recorded for a sandbox the caller creates: their user name, if it is an e-mail
    address or team:<name> (the formats an owner must have)."""
    return identity.user if OWNER_PATTERN.fullmatch(identity.user) else None


def identity_from_tags(tags: Mapping[str, str] | None) -> Identity | None:
    """The identity carried by a run's tags (None when the run has none)."""
    tags = tags or {}
    if not (tags.get(USER_TAG) or tags.get(ROLE_TAG)):
        return None
    return resolve_identity(load_policies(), tags=tags)


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

    def __init__(
        self, wh: Warehouse, identity: Identity | None = None, policies: Policies | None = None
    ) -> None:
        self.wh = wh
        self._identity = identity
        self._policies = policies

    @property
    def policies(self) -> Policies:
        return self._policies or load_policies()

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
        pinned = self.policies.users.get(who.user)
        if pinned is not None and who.role not in pinned:
            return f"{who.user} may not act as {who.role} (allowed: {', '.join(pinned)})"
        role = self.role()
        if action in (READ, WRITE):
            if environment is None:
                raise ValueError(f"{action} needs an environment")
            if owner is None:
                owner = self._owner(environment)
            patterns = role.read if action == READ else role.write
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
        if action in (READ, WRITE) and owner is None and environment is not None:
            owner = self._owner(environment)
        reason = self.denial(action, environment, owner=owner)
        if reason is not None:
            self.refuse(action, environment, reason, owner=owner)

    def refuse(
        self, action: str, environment: str | None, reason: str, *, owner: str | None = None
    ) -> None:
        """Record a denial in the ledger and raise AccessDenied."""
        who = self.identity
        self.wh.ledger.append(
            LedgerKind.ACCESS_DENIED,
            actor=who.actor,
            environment=environment,
            params={
                "action": action, "user": who.user, "role": who.role,
                "identity_source": who.source, "owner": owner, "reason": reason,
            },
        )  # fmt: skip
        raise AccessDenied(f"access denied: {reason}")

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
                "diff", ",".join(environments),
                f"{who.user} ({who.role}) may not compare rows of {' and '.join(environments)}: "
                f"example rows would show {', '.join(sorted(masked))} values unmasked "
                "(compare against a sandbox, where PII is masked)",
            )  # fmt: skip

    def connect(self, environment: str) -> duckdb.DuckDBPyConnection:
        """A read-only connection to `environment` as this identity may see it: through views
        that mask every column whose sensitivity the role may not see (and any undeclared one)."""
        self.check(READ, environment)
        masked = self.masked_levels()
        if not masked:
            return self.wh.catalogs.connect(environment)
        from elt_platform.governance.views import governed_catalogs

        return governed_catalogs(self.wh, masked).connect(environment)

    def _owner(self, environment: str) -> str | None:
        try:
            return self.wh.environments.get(environment).owner
        except UnknownEnvironment:
            return None
