"""One SQLAlchemy engine (and pool) per distinct URL per process, shared by every source
and sink that uses it, disposed when the last one closes."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

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
        try:
            parsed = make_url(url)
            engine = create_engine(parsed, pool_pre_ping=True)
        except NoSuchModuleError as exc:
            raise FieldError(
                f"no SQLAlchemy dialect or driver for {make_url(url).drivername!r} ({exc}); "
                "is the driver installed (e.g. pipeline-connector-jdbc[postgres])?",
                "url",
            ) from None
        except ArgumentError as exc:
            raise FieldError(f"not a valid database URL: {exc}", "url") from None
        except ModuleNotFoundError as exc:
            raise FieldError(
                f"the database driver is not installed: {exc.name} "
                "(e.g. pip install pipeline-connector-jdbc[postgres])",
                "url",
            ) from None
        _engines[url] = (engine, 1)
        return engine


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
