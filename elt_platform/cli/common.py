"""What every command shares: the caller's settings and identity, resolved when a command runs."""

from __future__ import annotations

from elt_platform.access.facade import GovernedWarehouse, open_warehouse
from elt_platform.access.identity import Identity
from elt_platform.settings import load_settings


def warehouse() -> GovernedWarehouse:
    """The warehouse of the installation in this shell's environment, as its caller."""
    return open_warehouse(load_settings())


def caller() -> Identity:
    """Who runs this command (ELT_USER/ELT_ROLE, else the OS user in the default role)."""
    return warehouse().identity
