"""Which metadata database, and engines configured for it.

Default: SQLite at ``.pipeline/pipeline.db`` under the working directory (embedded, no
server). ``PIPELINE_DATABASE_URL`` selects another, e.g.
``postgresql+psycopg://user@127.0.0.1:5432/pipeline`` or
``mysql+pymysql://user@127.0.0.1:3306/pipeline`` (MariaDB ≥ 10.6, MySQL ≥ 8.0.1).

On MySQL/MariaDB every connection reads and writes times in UTC (``time_zone``
``+00:00``) at READ COMMITTED, the isolation PostgreSQL defaults to: the locking reads
that claim executions and fire schedules then see the same rows they would there, and
InnoDB takes no gap locks for them. A bare ``mysql://`` or ``mariadb://`` URL means
SQLAlchemy's default driver, MySQLdb (mysqlclient); when only PyMySQL is installed (the
``mysql`` extra) it is used instead.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from pipeline_core.errors import SchemaError

__all__ = ["DATABASE_URL_ENV", "database_url", "default_sqlite_path", "make_engine", "safe_url"]

DATABASE_URL_ENV = "PIPELINE_DATABASE_URL"


def default_sqlite_path(cwd: Path | None = None) -> Path:
    return (cwd or Path.cwd()) / ".pipeline" / "pipeline.db"


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else ``$PIPELINE_DATABASE_URL``, else the embedded default."""
    return url or os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{default_sqlite_path()}"


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (see below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock at BEGIN: two writers then queue instead of both reading
        # the same version and one failing to upgrade its lock later.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_MYSQL_EXTRA = "pip install 'pipeline-core[mysql]'"
_EXTRAS = {
    "postgresql": "pip install 'pipeline-core[postgres]'",
    "mysql": _MYSQL_EXTRA,
    "mariadb": _MYSQL_EXTRA,
}


def _mysql_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Times are stored as UTC: NOW() and any TIMESTAMP conversion then agree with
        # the values written from Python, whatever the server's own time zone.
        cur = dbapi_conn.cursor()
        cur.execute("SET time_zone = '+00:00'")
        cur.close()


def _bare_mysql(url: URL) -> URL:
    """``mysql://`` → ``mysql+pymysql://`` when MySQLdb is missing and PyMySQL is not."""
    if url.drivername not in ("mysql", "mariadb"):
        return url
    if importlib.util.find_spec("MySQLdb") is not None:
        return url
    if importlib.util.find_spec("pymysql") is None:
        return url  # the error then names MySQLdb and what to install
    return url.set(drivername=f"{url.drivername}+pymysql")


def _missing_driver(url: URL, exc: ImportError) -> SchemaError:
    backend, module = url.get_backend_name(), exc.name or str(exc)
    fix = _EXTRAS.get(backend, f"install the Python driver of {url.drivername}://")
    if module == "MySQLdb":  # what SQLAlchemy picks for a bare mysql:// URL
        fix = (
            f"{_MYSQL_EXTRA} and write the URL as {backend}+pymysql://… "
            "(or pip install mysqlclient)"
        )
    return SchemaError(
        f"the metadata database {url.drivername}:// needs the Python module "
        f"{module}, which is not installed: {fix}"
    )


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (see :func:`database_url`); creates the SQLite folder."""
    resolved = make_url(database_url(url))
    if resolved.get_backend_name() == "sqlite":
        if resolved.database and resolved.database != ":memory:":
            Path(resolved.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(resolved, **kwargs)
        _sqlite_setup(engine)
        return engine
    mysql = resolved.get_backend_name() in ("mysql", "mariadb")
    if mysql:
        resolved = _bare_mysql(resolved)
        if "charset" not in resolved.query:
            resolved = resolved.update_query_dict({"charset": "utf8mb4"})
        kwargs.setdefault("isolation_level", "READ COMMITTED")
        # below the servers' default wait_timeout (8 h) and any proxy's idle cut-off
        kwargs.setdefault("pool_recycle", 1800)
    try:
        engine = create_engine(resolved, pool_pre_ping=True, **kwargs)
    except ImportError as exc:  # the URL's driver is not installed
        raise _missing_driver(resolved, exc) from None
    if mysql:
        _mysql_setup(engine)
    return engine
