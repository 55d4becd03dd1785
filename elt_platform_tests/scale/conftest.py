"""Fixtures of the scale tests (`make test-scale`): a database of their own on the throwaway
PostgreSQL server. Every module here is marked `scale`: deselected without the server's URL."""

from __future__ import annotations

import uuid

import pytest

from elt_platform_tests.conftest import postgres_database


@pytest.fixture
def pg_url() -> str:
    """A fresh, empty database on the test server."""
    return postgres_database(f"scale_{uuid.uuid4().hex[:12]}")
