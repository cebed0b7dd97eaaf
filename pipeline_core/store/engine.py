"""Which metadata database, and engines configured for it.

Default: SQLite at ``.pipeline/pipeline.db`` under the working directory (embedded, no
server). ``PIPELINE_DATABASE_URL`` selects another, e.g.
``postgresql+psycopg://user@127.0.0.1:5432/pipeline``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

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


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (see :func:`database_url`); creates the SQLite folder."""
    resolved = make_url(database_url(url))
    if resolved.get_backend_name() == "sqlite":
        if resolved.database and resolved.database != ":memory:":
            Path(resolved.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(resolved, **kwargs)
        _sqlite_setup(engine)
        return engine
    try:
        return create_engine(resolved, pool_pre_ping=True, **kwargs)
    except ImportError as exc:  # the URL's driver is not installed
        extra = {"postgresql": "pip install 'pipeline-core[postgres]'"}.get(
            resolved.get_backend_name(), f"install the Python driver of {resolved.drivername}://"
        )
        raise SchemaError(
            f"the metadata database {resolved.drivername}:// needs the Python module "
            f"{exc.name or exc}, which is not installed: {extra}"
        ) from None
