"""The connector's tests run on SQLite, PostgreSQL and MySQL/MariaDB: ``db_url`` here
widens the root conftest's (SQLite, PostgreSQL) by the ``mysql_url`` server. A missing
server fails the tests, never skips them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend the connector documents as tested."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data.db'}"
        return
    yield request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")
