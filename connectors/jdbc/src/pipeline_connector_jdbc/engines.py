"""One SQLAlchemy engine (and pool) per distinct URL per process, shared by every source
and sink that uses it, disposed when the last one closes."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from pipeline_connector_jdbc import drivers
from pipeline_core import FieldError

__all__ = ["acquire", "release"]

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
    the URL's scheme (never the URL: it may hold a password) and what to install."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise FieldError(f"not a valid database URL: {exc}", "url") from None
    scheme, backend = parsed.drivername, parsed.get_backend_name()
    driver = scheme.partition("+")[2] or None
    try:
        if parsed.get_dialect().is_async:
            raise FieldError(drivers.async_driver(scheme, backend), "url")
        return create_engine(parsed, pool_pre_ping=True)
    except NoSuchModuleError:
        raise FieldError(drivers.unknown_dialect(scheme, backend, driver), "url") from None
    except ModuleNotFoundError as exc:
        module = exc.name or driver or backend
        raise FieldError(drivers.missing_driver(scheme, backend, module), "url") from None
    except ImportError as exc:  # installed, but broken (e.g. psycopg without libpq)
        module = exc.name or driver or backend
        raise FieldError(
            drivers.missing_driver(scheme, backend, module, why=str(exc)), "url"
        ) from None
    except ArgumentError as exc:
        raise FieldError(f"not a valid database URL: {exc}", "url") from None


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
