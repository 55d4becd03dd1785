"""Durations as people type them (`90s`, `30m`, `12h`, `7d`, `2w`, `1d12h`): sandbox TTLs,
retention periods, freshness lags. The one parser of the platform."""

from __future__ import annotations

import re
from datetime import timedelta

from elt_platform.errors import InvalidDuration

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PART = re.compile(r"(\d+)([smhdw])")
NO_EXPIRY = ("none", "never")
MAX_SECONDS = 3650 * 86_400  # ten years: anything longer is a typo, not a TTL


def parse_duration(text: object) -> int | None:
    """Seconds in `text`, or None for `none`/`never`; InvalidDuration for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidDuration(f"invalid duration {text!r}")
    value = text.strip().lower()
    if value in NO_EXPIRY:
        return None
    parts = _PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise InvalidDuration(f"invalid duration {text!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0 or seconds > MAX_SECONDS:
        raise InvalidDuration(f"duration {text!r} must be between 1s and 3650d")
    return seconds


def parse_period(text: object) -> timedelta:
    """A positive duration (retention, freshness) as a timedelta; ValueError otherwise, so
    configuration models report it at the field's line."""
    try:
        seconds = parse_duration(text)
    except InvalidDuration as exc:
        raise ValueError(f"{text!r} is not a duration (use e.g. 30d, 24h, 15m)") from exc
    if seconds is None:
        raise ValueError(f"{text!r} is not a duration (use e.g. 30d, 24h, 15m)")
    return timedelta(seconds=seconds)


def format_duration(seconds: float | None) -> str:
    """A short human form: `7d`, `5h12m`, `45s`; `-` for None."""
    if seconds is None:
        return "-"
    remaining = int(round(seconds))
    sign = "-" if remaining < 0 else ""
    remaining = abs(remaining)
    out = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size:
            out.append(f"{remaining // size}{unit}")
            remaining %= size
        if len(out) == 2:
            break
    return sign + ("".join(out) or "0s")
