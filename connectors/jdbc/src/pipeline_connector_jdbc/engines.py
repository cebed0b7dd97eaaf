"""One SQLAlchemy engine (and pool) per distinct URL per process, shared by every source
and sink that uses it, disposed when the last one closes.

A bare ``mysql://`` or ``mariadb://`` URL means SQLAlchemy's default driver, MySQLdb
(mysqlclient); when that is not installed and PyMySQL is (the ``mysql`` extra), the URL
is read as ``mysql+pymysql://`` instead of failing.
"""

from __future__ import annotations

import importlib
import threading

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from pipeline_connector_jdbc import drivers, mysql
from pipeline_core import FieldError

__all__ = ["acquire", "reachable", "release"]

_lock = threading.Lock()
_engines: dict[str, tuple[Engine, int]] = {}


def acquire(url: str) -> Engine:
    """The process's engine for ``url`` (created on first use)."""
    with _lock:
        entry = _engines.get(url)
        if entry is not None:
            _engines[url] = (entry[0], entry[1] + 1)
            return entry[0]
        engine = _create(url)
        _engines[url] = (engine, 1)
        return engine


def _create(url: str) -> Engine:
    """A new engine; a bad URL or a missing driver is one FieldError on ``url`` that names
    the URL (its password as ***), the driver module and what to install."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise FieldError(f"not a valid database URL: {exc}", "url") from None
    scheme, backend = parsed.drivername, parsed.get_backend_name()
    driver = scheme.partition("+")[2] or None
    parsed = _bare_mysql(parsed)

    def error(message: str) -> FieldError:
        return FieldError(f"{drivers.shown_url(url)}: {message}", "url")

    try:
        if parsed.get_dialect().is_async:
            raise error(drivers.async_driver(scheme, backend))
        options = mysql.engine_options(backend, parsed.drivername.partition("+")[2])
        engine = create_engine(parsed, pool_pre_ping=True, **options)
        mysql.setup_connections(engine)
        return engine
    except NoSuchModuleError:
        raise error(drivers.unknown_dialect(scheme, backend, driver)) from None
    except ModuleNotFoundError as exc:
        module = exc.name or driver or backend
        raise error(drivers.missing_driver(scheme, backend, module)) from None
    except ImportError as exc:  # installed, but broken (e.g. psycopg without libpq)
        module = exc.name or driver or backend
        raise error(drivers.missing_driver(scheme, backend, module, why=str(exc))) from None
    except ArgumentError as exc:
        raise FieldError(f"not a valid database URL: {exc}", "url") from None


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _bare_mysql(url: URL) -> URL:
    """``mysql://`` → ``mysql+pymysql://`` when MySQLdb is missing and PyMySQL is not."""
    if url.drivername not in ("mysql", "mariadb") or _importable("MySQLdb"):
        return url
    if not _importable("pymysql"):
        return url  # the error then names MySQLdb and the extra to install
    return url.set(drivername=f"{url.drivername}+pymysql")


def release(url: str) -> None:
    with _lock:
        entry = _engines.get(url)
        if entry is None:
            return
        engine, count = entry
        if count <= 1:
            del _engines[url]
            engine.dispose()
        else:
            _engines[url] = (engine, count - 1)


def reachable(url: str) -> str | None:
    """None when a connection to ``url`` opens (and is closed again at once), else the
    problem in one line, the password shown as ***. Blocks: run it in a thread."""
    try:
        engine = acquire(url)
    except FieldError as exc:
        return exc.message
    try:
        engine.connect().close()
    except DBAPIError as exc:
        return drivers.cannot_connect(url, engine.dialect.driver, exc.orig or exc)
    finally:
        release(url)
    return None
