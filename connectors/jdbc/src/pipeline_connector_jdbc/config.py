"""Configuration of the SQL source and sink (type ``jdbc``)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from pipeline_core import FieldError

__all__ = ["JdbcSinkConfig", "JdbcSourceConfig"]


def _positive(_i: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value <= 0:
        raise FieldError(f"expected a number > 0, got {value!r}", attr.name)


def _url(_i: Any, attr: attrs.Attribute[Any], value: str) -> None:
    if "://" not in value:
        raise FieldError(
            f"expected an SQLAlchemy URL such as postgresql+psycopg://user@host/db or "
            f"sqlite:///path.db, got {value!r}",
            attr.name,
        )


@attrs.define(frozen=True, kw_only=True)
class JdbcSourceConfig:
    """Read a table page by page (BATCH_ROLLER) or stream one query (SQL_TASK)."""

    #: SQLAlchemy URL; credentials as ``${env:NAME}`` references. A relative SQLite file
    #: (``sqlite:///out.db``) is relative to the job file's folder.
    url: str = attrs.field(validator=_url, repr=False, metadata={"path": "sqlite-url"})
    #: A table to read with keyset pagination on ``key`` ...
    table: str | None = None
    #: ... or one SQL query, streamed with a server-side cursor.
    query: str | None = None
    #: Table mode: the ordered, unique key column pages are cut on (never OFFSET).
    #: Query mode: an ordered id column of the query's result, to resume after it.
    key: str | None = None
    #: Table mode: the columns to read (default: all).
    columns: list[str] | None = None
    #: Table mode: rows per page (one query each).
    page_size: int = attrs.field(default=10_000, validator=_positive)
    #: Table schema (default: the connection's).
    schema: str | None = None
    #: Rows fetched per round trip from the server-side cursor (query mode).
    fetch_size: int = attrs.field(default=5_000, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise FieldError("give exactly one of 'table' or 'query'", "table")
        if self.table is not None and self.key is None:
            raise FieldError("table mode needs 'key': the ordered column to page on", "key")


@attrs.define(frozen=True, kw_only=True)
class JdbcSinkConfig:
    """Write records (dicts) into a table."""

    url: str = attrs.field(validator=_url, repr=False, metadata={"path": "sqlite-url"})
    table: str
    schema: str | None = None
    #: ``append`` | ``upsert`` (insert or update on ``key``) | ``replace`` (load into a
    #: staging table, swap it in atomically when the job completes).
    mode: Literal["append", "upsert", "replace"] = "append"
    #: The conflict columns of ``upsert`` (a unique key of the table).
    key: list[str] | None = None
    #: Bulk load: COPY on PostgreSQL (an order of magnitude faster than INSERT), LOAD DATA
    #: LOCAL INFILE on MySQL/MariaDB where the server allows it; false: INSERTs.
    copy: bool = True
    #: Exactly-once: stage each checkpoint's rows and move them into the table in the same
    #: transaction that records the checkpoint in ``pipeline_sink_progress``.
    exactly_once: bool = False
    #: Retries of a lost connection (exponential backoff from 0.5 s) before failing.
    max_retries: int = 3

    def __attrs_post_init__(self) -> None:
        if self.mode == "upsert" and not self.key:
            raise FieldError("mode 'upsert' needs 'key': the columns of a unique key", "key")
        if self.exactly_once and self.mode == "replace":
            raise FieldError(
                "'replace' is already all-or-nothing; drop exactly_once", "exactly_once"
            )
