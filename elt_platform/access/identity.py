"""Who is calling: a user in a role. A Dagster run is who its `elt/user`/`elt/role` tags say (a run
without them is the policy's least-privileged `auth.untagged_runs` role); any other process is
ELT_USER/ELT_ROLE, else the OS user in the policy's `default_role`. Identities are claimed, not
authenticated here: ARCHITECTURE.md says who authenticates them in each deployment."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass

from elt_platform.environments import OWNER_PATTERN
from elt_platform.errors import ConfigError
from elt_platform.project.policies import Policies

USER_ENV_VAR, ROLE_ENV_VAR, AUTH_ENV_VAR = "ELT_USER", "ELT_ROLE", "ELT_AUTH"
USER_TAG, ROLE_TAG = "elt/user", "elt/role"
UNTAGGED_USER = "untagged-run"


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


def current_identity(policies: Policies) -> Identity:
    """The identity of this process (ELT_USER/ELT_ROLE or the default), resolved now."""
    return resolve_identity(policies)


def default_owner(identity: Identity) -> str | None:
    """The owner recorded for a sandbox the caller creates: their user name, if it is an e-mail
    address or team:<name> (the formats an owner must have)."""
    return identity.user if OWNER_PATTERN.fullmatch(identity.user) else None


def run_identity(policies: Policies, tags: Mapping[str, str] | None) -> Identity:
    """The identity a Dagster run acts as: the one in its tags. A run launched without them (a
    launchpad or GraphQL launch that set none) gets the least-privileged role, never the default;
    a user tag without a role takes the user's first pinned role, else that same role."""
    tags = tags or {}
    user, role = tags.get(USER_TAG), tags.get(ROLE_TAG)
    if not (user or role):
        return Identity(UNTAGGED_USER, policies.auth.untagged_runs, "untagged run")
    user = user or UNTAGGED_USER
    pinned = policies.users.get(user)
    return Identity(
        user, role or (pinned[0] if pinned else policies.auth.untagged_runs), "run tags"
    )


def strict_auth(policies: Policies, environ: Mapping[str, str] | None = None) -> bool:
    """Whether identities must be pinned under `users:` (ELT_AUTH=strict or `auth.strict`)."""
    value = (os.environ if environ is None else environ).get(AUTH_ENV_VAR, "").strip().lower()
    if value not in ("", "open", "strict"):
        raise ConfigError(f"{AUTH_ENV_VAR}={value!r} is not a mode", hint="use strict or open")
    return value == "strict" or (value == "" and policies.auth.strict)


def identity_problem(policies: Policies, identity: Identity) -> str | None:
    """Why `identity` may not act at all (None when it may): a pinned user claiming a role they
    are not pinned to, or, under strict authentication, a user nobody pinned."""
    pinned = policies.users.get(identity.user)
    if pinned is not None and identity.role not in pinned:
        return f"{identity.user} may not act as {identity.role} (allowed: {', '.join(pinned)})"
    if pinned is None and strict_auth(policies):
        return (
            f"{identity.user} is not a known user (strict authentication: only users pinned "
            "under users: in the policy may act)"
        )
    return None
