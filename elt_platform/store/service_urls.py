"""PostgreSQL URLs of the control plane (ELT_METADATA_URL, ELT_DAGSTER_STORAGE_URL): validation,
the driver they need, redaction for messages, and the one-line error naming a service that did
not answer. No driver is imported here, so the SQLite default never needs one."""

from __future__ import annotations

import re

from elt_platform.errors import InvalidServiceUrl, ServiceUnavailable


def driver_url(url: str) -> str:
    """The URL with psycopg2 as its driver (SQLAlchemy 2.1 maps plain `postgresql://` to
    psycopg 3; `postgres://` is a common spelling of the same)."""
    from sqlalchemy.engine import make_url  # not at import: the SQLite default never needs it

    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidServiceUrl(f"not a database URL: {redact(url)!r}") from exc
    if parsed.get_backend_name() not in {"postgresql", "postgres"}:
        raise InvalidServiceUrl(f"not a PostgreSQL URL: {redact(url)!r}")
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


def describe(url: str) -> str:
    """`host:port/database` of a URL, for one-line errors."""
    from sqlalchemy.engine import make_url

    parsed = make_url(driver_url(url))
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def unavailable(service: str, url: str, exc: BaseException) -> ServiceUnavailable:
    """One line naming the service and the first line of the server's answer."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ServiceUnavailable(
        f"{service} (PostgreSQL at {describe(url)}) is unavailable: {first}",
        hint=f"check that the server runs and that {redact(url)} has the right host, port, "
        "database, user and password",
    )


def metadata_backend(location: str) -> str:
    """`sqlite` or `postgresql` for a metadata store location (a path, `sqlite:///path` or a
    PostgreSQL URL); any other URL is refused with the forms that work."""
    scheme = location.split("://", 1)[0] if "://" in location else ""
    if scheme in {"", "sqlite"}:
        return "sqlite"
    if scheme.split("+", 1)[0] in {"postgresql", "postgres"}:
        return "postgresql"
    raise InvalidServiceUrl(
        f"ELT_METADATA_URL {redact(location)!r} is neither a PostgreSQL nor a SQLite URL"
    )
