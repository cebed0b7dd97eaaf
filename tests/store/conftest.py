"""The metadata store's tests run on every database it supports: SQLite, PostgreSQL and
MySQL/MariaDB. ``db_url`` here widens the root conftest's (SQLite, PostgreSQL) to
``every_db_url``; a missing server fails the tests, never skips them."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_url(every_db_url: str) -> str:
    """An empty database (no schema) on each backend."""
    return every_db_url
