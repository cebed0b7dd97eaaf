"""The metadata store's tests run on every database it supports: SQLite, PostgreSQL and
MySQL/MariaDB. ``db_url`` here widens the root conftest's (SQLite, PostgreSQL) by the
``mysql_url`` server; a missing server fails the tests, never skips them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

#: the backends every metadata-store test runs on
BACKENDS = ["sqlite", "postgresql", "mysql"]


def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema) on the backend ``request.param`` names."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    yield request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema) on each backend."""
    yield from any_db_url(request, tmp_path)
