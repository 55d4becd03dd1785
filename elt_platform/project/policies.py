"""The `policies:` section of the project file: roles, identities (user pins, and `auth`: strict
authentication and the role of untagged runs), per-asset governance the dbt YAML does not say
(for projects the platform may not edit), project-wide defaults, and private-aggregate datasets.
Absent, the platform's four built-in roles apply."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from elt_platform.durations import parse_period
from elt_platform.environments import CORE_ENVIRONMENTS, OWNER_PATTERN, validate_sandbox_name
from elt_platform.errors import EltError, PolicyError
from elt_platform.project.contracts.model import Sensitivity

LEVELS = tuple(s.value for s in Sensitivity)  # public < internal < confidential < pii


class Action:
    """Actions beyond reading and writing environments."""

    READ_LEDGER = "read_ledger"
    EDIT_CONTRACTS = "edit_contracts"
    ENFORCE_RETENTION = "enforce_retention"
    RELEASE_PRIVATE_AGGREGATES = "release_private_aggregates"


ACTIONS = (
    Action.READ_LEDGER,
    Action.EDIT_CONTRACTS,
    Action.ENFORCE_RETENTION,
    Action.RELEASE_PRIVATE_AGGREGATES,
)
# Private aggregates the platform knows how to release, and the assets each one reads.
ORDERS_BY_REGION_MONTH = "orders_by_region_month"
PRIVATE_DATASET_INPUTS = {ORDERS_BY_REGION_MONTH: ("orders", "customers")}
_IDENT = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def validate_pattern(pattern: str) -> str:
    """Validate an environment pattern: *, prod, staging, sandbox:*, sandbox:own, sandbox:NAME."""
    if pattern == "*" or pattern in CORE_ENVIRONMENTS:
        return pattern
    kind, sep, rest = pattern.partition(":")
    if kind == "sandbox" and sep and rest in {"*", "own"}:
        return pattern
    if kind == "sandbox" and sep:
        try:
            validate_sandbox_name(rest)
        except EltError:
            raise ValueError(f"{pattern!r} does not name a valid sandbox") from None
        return pattern
    raise ValueError(
        f"unknown environment pattern {pattern!r} (use *, prod, staging, sandbox:*, sandbox:own "
        "or sandbox:NAME)"
    )


class RolePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    read: list[str] = Field(default_factory=list)
    write: list[str] = Field(default_factory=list)
    unmasked: list[Sensitivity] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)

    @field_validator("read", "write")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return [validate_pattern(p) for p in value]

    @field_validator("actions")
    @classmethod
    def _actions(cls, value: list[str]) -> list[str]:
        unknown = [a for a in value if a not in ACTIONS]
        if unknown:
            raise ValueError(f"unknown action {unknown[0]!r} (known: {', '.join(ACTIONS)})")
        return value

    @property
    def unmasked_levels(self) -> frozenset[str]:
        return frozenset(s.value for s in self.unmasked)

    @property
    def masked_levels(self) -> frozenset[str]:
        return frozenset(LEVELS) - self.unmasked_levels


def check_owner(value: str | None) -> str | None:
    """An owner is an e-mail address or `team:<name>` (ValueError otherwise)."""
    if value is not None and not OWNER_PATTERN.fullmatch(value):
        raise ValueError(f"{value!r} must be an e-mail address or team:<name>")
    return value


def check_period(value: str | None) -> str | None:
    """A retention or freshness period such as 30d (ValueError otherwise)."""
    if value is not None:
        parse_period(value)
    return value


Owner = Annotated[str, AfterValidator(check_owner)]  # an e-mail address or team:<name>
Period = Annotated[str, AfterValidator(check_period)]  # e.g. 30d


class AssetGovernance(BaseModel):
    """Governance of one asset that its dbt YAML does not declare (dbt `meta` wins): which
    timestamp column dates its rows (`none` with a reason when rows never expire one by one),
    owner and retention."""

    model_config = ConfigDict(extra="forbid")
    retention_column: str | None = None
    reason: str | None = None
    owner: Owner | None = None
    retention: Period | None = None
    description: str | None = None
    columns: dict[str, Sensitivity | None] = Field(default_factory=dict)  # column -> sensitivity

    @model_validator(mode="after")
    def _reason_for_none(self) -> AssetGovernance:
        if self.retention_column == "none" and not (self.reason or "").strip():
            raise ValueError("retention_column: none needs a reason")
        return self

    @property
    def dated(self) -> bool:
        return self.retention_column != "none"


class GovernanceDefaults(BaseModel):
    """What every asset and column gets when neither its dbt YAML nor `assets:` says: a way to
    govern a project one cannot edit without declaring it twice."""

    model_config = ConfigDict(extra="forbid")
    owner: Owner | None = None
    retention: Period | None = None
    sensitivity: Sensitivity | None = None  # of columns declared nowhere (None: unclassified)


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epsilon: float = Field(gt=0)
    delta: float = Field(default=0.0, ge=0, lt=1)


class PrivateDataset(BaseModel):
    """A differentially private aggregate: its public domain, contribution bounds and budget."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1)
    owner: Owner
    retention: Period
    regions: list[str] = Field(min_length=1)
    first_month: str
    last_month: str
    max_orders_per_customer: int = Field(ge=1)
    max_order_amount: float = Field(gt=0)
    budget: Budget
    consumers: dict[str, Budget] = Field(default_factory=dict)

    @field_validator("first_month", "last_month", mode="before")
    @classmethod
    def _month(cls, value: object) -> str:
        text = str(value)
        match = _MONTH.fullmatch(text)
        if not match or not 1 <= int(match[2]) <= 12:
            raise ValueError(f"{text!r} is not a month (use YYYY-MM)")
        return text

    @field_validator("consumers")
    @classmethod
    def _consumer_names(cls, value: dict[str, Budget]) -> dict[str, Budget]:
        for name in value:
            validate_consumer(name)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> PrivateDataset:
        if self.first_month > self.last_month:
            raise ValueError(f"first_month {self.first_month} is after last_month")
        return self

    def months(self) -> list[date]:
        """Every month of the public domain (first day of each)."""
        year, month = (int(x) for x in self.first_month.split("-"))
        out = []
        while f"{year:04d}-{month:02d}" <= self.last_month:
            out.append(date(year, month, 1))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def budget_for(self, consumer: str) -> Budget:
        return self.consumers.get(consumer, self.budget)


def validate_consumer(name: str) -> str:
    if not _IDENT.fullmatch(name):
        raise ValueError(
            f"consumer {name!r} must be a lowercase identifier (a letter, then [a-z0-9_])"
        )
    return name


class Privacy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    datasets: dict[str, PrivateDataset] = Field(default_factory=dict)


def builtin_roles() -> dict[str, RolePolicy]:
    """The roles a project gets when it declares none (README: Identity, roles and governance)."""
    every = ["public", "internal", "confidential", "pii"]
    return {
        "engineer": RolePolicy(
            description="Builds pipelines, publishes releases; the default for local use.",
            read=["*"],
            write=["staging", "prod", "sandbox:*"],
            unmasked=every,
            actions=[
                Action.READ_LEDGER,
                Action.ENFORCE_RETENTION,
                Action.RELEASE_PRIVATE_AGGREGATES,
            ],
        ),
        "analyst": RolePolicy(
            description="Experiments in their own sandboxes; never sees raw PII.",
            read=["prod", "staging", "sandbox:*"],
            write=["sandbox:own"],
            unmasked=every[:3],
        ),
        "steward": RolePolicy(
            description="Owns data definitions; approves contract changes and runs retention.",
            read=["*"],
            unmasked=every,
            actions=[Action.EDIT_CONTRACTS, Action.READ_LEDGER, Action.ENFORCE_RETENTION],
        ),
        "auditor": RolePolicy(
            description="Verifies the audit ledger and what prod serves.",
            read=["prod"],
            unmasked=every[:2],
            actions=[Action.READ_LEDGER],
        ),
    }


# The role of Dagster runs launched without identity tags unless `auth.untagged_runs` names
# another: it may read, write and do nothing (it need not be declared under `roles:`).
ANONYMOUS_ROLE = "anonymous"
_ANONYMOUS = RolePolicy(description="No access: runs launched without identity tags.")


class AuthPolicy(BaseModel):
    """How identities are trusted: `strict` refuses users not pinned under `users:` (also set by
    ELT_AUTH=strict); `untagged_runs` is the role of runs launched without identity tags."""

    model_config = ConfigDict(extra="forbid")
    strict: bool = False
    untagged_runs: str = ANONYMOUS_ROLE


class Policies(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_role: str = "engineer"
    roles: dict[str, RolePolicy] = Field(default_factory=builtin_roles, min_length=1)
    users: dict[str, list[str]] = Field(default_factory=dict)
    auth: AuthPolicy = Field(default_factory=AuthPolicy)
    defaults: GovernanceDefaults = Field(default_factory=GovernanceDefaults)
    assets: dict[str, AssetGovernance] = Field(default_factory=dict)
    privacy: Privacy = Field(default_factory=Privacy)

    def role(self, name: str) -> RolePolicy:
        if name == ANONYMOUS_ROLE and name not in self.roles:
            return _ANONYMOUS
        try:
            return self.roles[name]
        except KeyError:
            raise PolicyError(
                f"unknown role {name!r} (roles: {', '.join(sorted(self.roles))})"
            ) from None


def reference_problems(policies: Policies) -> list[tuple[tuple, str]]:
    """(location, message) of every role name the policy uses but does not define."""
    problems: list[tuple[tuple, str]] = []
    if policies.default_role not in policies.roles:
        problems.append(
            (("default_role",), f"unknown role {policies.default_role!r} (not defined in roles)")
        )
    untagged = policies.auth.untagged_runs
    if untagged != ANONYMOUS_ROLE and untagged not in policies.roles:
        problems.append(
            (("auth", "untagged_runs"), f"unknown role {untagged!r} (not defined in roles)")
        )
    for user, roles in policies.users.items():
        if not roles:
            problems.append((("users", user), f"user {user!r} has no role"))
        for i, role in enumerate(roles):
            if role not in policies.roles:
                problems.append((("users", user, i), f"user {user!r} has unknown role {role!r}"))
    return problems
