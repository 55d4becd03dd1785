"""The environment model: names, kinds and who may write where.

An environment is also a Dagster partition key (`orchestration/partitions.py` resolves it from
the run's partition key at run time, never at import time); this module knows nothing of Dagster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from elt_platform.errors import InvalidEnvironmentName, WriteNotAllowed

PROD = "prod"
STAGING = "staging"
CORE_ENVIRONMENTS = (PROD, STAGING)
MAX_NAME_LENGTH = 40
_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
# Names that would be confusing as sandboxes or collide with platform folders.
RESERVED_NAMES = frozenset({"main", "raw", "default", "pending", "tmp", "all", "none"})
# Who can own an asset or a sandbox: an e-mail address or `team:<name>` (Dagster's owner format).
OWNER_PATTERN = re.compile(r"(team:[a-z0-9_\-]+|[^@\s]+@[^@\s]+\.[A-Za-z]{2,})")


class EnvironmentKind(StrEnum):
    PROD = "prod"
    STAGING = "staging"
    SANDBOX = "sandbox"


@dataclass(frozen=True)
class Environment:
    name: str
    kind: EnvironmentKind

    @property
    def is_prod(self) -> bool:
        return self.kind is EnvironmentKind.PROD

    @property
    def can_build(self) -> bool:
        """Assets are built in staging and sandboxes; prod changes only by publishing a release."""
        return self.kind is not EnvironmentKind.PROD


def validate_environment_name(name: object) -> str:
    """Return `name` if it is a valid environment name, else raise InvalidEnvironmentName."""
    if not isinstance(name, str):
        raise InvalidEnvironmentName(
            f"environment name must be a string, got {type(name).__name__}"
        )
    shown = name if len(name) <= 60 else name[:57] + "..."
    if not name:
        raise InvalidEnvironmentName("environment name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidEnvironmentName(
            f"environment name {shown!r} is {len(name)} characters long (max {MAX_NAME_LENGTH})"
        )
    if not name.isascii() or _NAME_RE.fullmatch(name) is None:
        bad = sorted(
            {c for c in name if not (c.isascii() and (c.islower() or c.isdigit() or c == "_"))}
        )
        detail = f"contains {''.join(bad)!r}" if bad else "must start with a lowercase letter"
        raise InvalidEnvironmentName(f"invalid environment name {shown!r}: {detail}")
    return name


def _allowed_char(c: str) -> bool:
    return c.isascii() and (c.islower() or c.isdigit() or c == "_")


def kind_of(name: str) -> EnvironmentKind:
    if name == PROD:
        return EnvironmentKind.PROD
    if name == STAGING:
        return EnvironmentKind.STAGING
    return EnvironmentKind.SANDBOX


def environment_from_name(name: object) -> Environment:
    valid = validate_environment_name(name)
    return Environment(name=valid, kind=kind_of(valid))


def validate_sandbox_name(name: object) -> str:
    """Sandbox names are environment names that are neither core nor reserved."""
    valid = validate_environment_name(name)
    if valid in CORE_ENVIRONMENTS or valid in RESERVED_NAMES:
        raise InvalidEnvironmentName(f"{valid!r} is reserved and cannot be a sandbox name")
    return valid


def require_buildable(env: Environment) -> Environment:
    """Raise WriteNotAllowed unless assets may be materialized in `env`."""
    if not env.can_build:
        raise WriteNotAllowed(f"assets cannot be materialized directly in {env.name!r}")
    return env


def can_publish(source: Environment, target: Environment) -> bool:
    """Only prod receives releases; they come from staging or (for proposals) a sandbox."""
    return target.is_prod and not source.is_prod
