"""Run the demo API for the duration of a build, with the environment the connector reads."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from elt_demo.api.faults import FaultPlan
from elt_demo.api.server import TOKEN_ENV, URL_ENV, DemoApi


@contextmanager
def serving_demo_api(data_dir: Path, faults: FaultPlan | None = None) -> Iterator[DemoApi]:
    """Start the API on a free 127.0.0.1 port and export its URL (and a token, unless one is
    set) to this process, so in-process runs find it; restore the environment afterwards."""
    saved = {key: os.environ.get(key) for key in (URL_ENV, TOKEN_ENV)}
    token = saved[TOKEN_ENV] or secrets.token_urlsafe(24)
    api = DemoApi(data_dir, token=token, faults=faults)
    os.environ[TOKEN_ENV] = token
    os.environ[URL_ENV] = api.url
    try:
        with api.running():
            yield api
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
