"""Who is calling: a user in a role, from a Dagster run's tags, else the environment variables
ELT_USER and ELT_ROLE, else the OS user in the policy's `default_role`."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass

from elt_platform.environments import OWNER_PATTERN
from elt_platform.project.policies import Policies

USER_ENV_VAR, ROLE_ENV_VAR = "ELT_USER", "ELT_ROLE"
USER_TAG, ROLE_TAG = "elt/user", "elt/role"


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


def identity_from_tags(policies: Policies, tags: Mapping[str, str] | None) -> Identity | None:
    """The identity carried by a run's tags (None when the run has none)."""
    tags = tags or {}
    if not (tags.get(USER_TAG) or tags.get(ROLE_TAG)):
        return None
    return resolve_identity(policies, tags=tags)
