"""Shared fixtures: databases. Tests using ``db_url`` run twice: on SQLite and on the real
PostgreSQL server.

``PIPELINE_TEST_POSTGRES_URL`` (default: the local server at 127.0.0.1:5432) names a
database to connect to for creating one throwaway database per test. A missing server
fails the tests; it never skips them (``make test`` starts or finds one first).
``PIPELINE_TEST_MYSQL_URL`` (default: MariaDB at 127.0.0.1:3306, root, database ``test``)
does the same for the ``mysql_url`` fixture.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from pipeline_core.store import MetadataStore
from pipeline_core.store.engine import make_engine
from pipeline_core.store.migrate import upgrade


@pytest.fixture(scope="session", autouse=True)
def _working_directory_outside_the_checkout(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Jobs run in-process keep working files under the working directory
    (``.pipeline/work``, the default database and checkpoints): the tests run from a
    throwaway one, so that ``make test`` leaves the checkout as it found it. Every path a
    test means in the checkout is spelled from its ``REPO``."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(before)


POSTGRES_ADMIN_URL = os.environ.get(
    "PIPELINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _create_pg_database() -> str:
    name = f"pipeline_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = make_engine(POSTGRES_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


MYSQL_ADMIN_URL = os.environ.get(
    "PIPELINE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)


def _create_mysql_database() -> str:
    name = f"pipeline_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(MYSQL_ADMIN_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    finally:
        admin.dispose()
    return make_url(MYSQL_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_mysql_database(url: str) -> None:
    name = make_url(url).database
    admin = make_engine(MYSQL_ADMIN_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """An empty throwaway database on the real MySQL/MariaDB server (fails, never skips,
    when the server is missing: ``eval "$(scripts/test-services.sh)"`` finds or starts it)."""
    url = _create_mysql_database()
    try:
        yield url
    finally:
        _drop_mysql_database(url)


#: Every database the metadata store supports: the store's own tests and the schedules'
#: run on all of them (``every_db_url``); other tests on SQLite and PostgreSQL (``db_url``).
METADATA_BACKENDS = ["sqlite", "postgresql", "mysql"]


@pytest.fixture(params=METADATA_BACKENDS)
def every_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema) on each backend of :data:`METADATA_BACKENDS`."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    yield request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    url = _create_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(url)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty throwaway database on the real PostgreSQL server."""
    url = _create_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(url)


def migrate_to_head(url: str) -> None:
    """Create the schema; the engine is disposed (an engine left to the garbage collector
    closes its pooled connections there, and psycopg warns about it in whatever test
    happens to be running)."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    """A MetadataStore at the current schema."""
    migrate_to_head(db_url)
    s = MetadataStore.open(db_url)
    try:
        yield s
    finally:
        s.close()
