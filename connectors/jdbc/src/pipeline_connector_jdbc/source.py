"""The ``jdbc`` source: a table page by page (keyset pagination) or one streamed query."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Engine, MetaData, Table, select, text
from sqlalchemy.engine import Connection, Result
from sqlalchemy.exc import DBAPIError, NoSuchTableError, OperationalError

from pipeline_connector_jdbc import drivers, engines, mysql
from pipeline_connector_jdbc.config import JdbcSourceConfig
from pipeline_core import (
    Batch,
    ConfigError,
    FieldError,
    Problem,
    RetriableConnectorError,
    RuntimeContext,
    Source,
    url_identity,
)

__all__ = ["JdbcSource"]

log = logging.getLogger("pipeline_connector_jdbc")


def config_error(ctx: RuntimeContext, field: str, message: str) -> ConfigError:
    return ConfigError(Problem(message, job=ctx.job_name, component=ctx.component, field=field))


def _dicts(result: Result[Any], rows: Any = None) -> list[dict[str, Any]]:
    # Plain str keys: SQLAlchemy's are str subclasses, which orjson (and so the JSON
    # sinks) refuse as dict keys.
    keys = [str(k) for k in result.keys()]  # noqa: SIM118 - a Result, not a dict
    return [dict(zip(keys, row, strict=True)) for row in (result if rows is None else rows)]


class JdbcSource(Source[JdbcSourceConfig]):
    """Table mode (BATCH_ROLLER): ``SELECT … WHERE key > :last ORDER BY key LIMIT n`` per
    page; position ``{"last_key", "current_page", "page_size", "total_processed"}``; each
    completed page is a natural checkpoint.

    Query mode (SQL_TASK): the query streams through a server-side cursor; position
    ``{"processed_rows", "last_processed_id"}``. With ``key`` the query is wrapped as
    ``SELECT * FROM (query) q WHERE key > :last ORDER BY key``, so a resumed run continues
    after the last id; without it, a resumed run skips ``processed_rows`` rows (the query
    must then order its rows deterministically).

    A lost connection is retried (from the last position) with backoff, then fails the
    job with a retriable error.
    """

    type_name = "jdbc"
    config_cls = JdbcSourceConfig
    #: Rows per batch unless the job sets source_batch_size: rows arrive fetch_size at a
    #: time, and fewer, larger batches cost less per row (docs/benchmarks.md, SQL_TASK).
    preferred_batch_size = 1000

    MAX_RETRIES = 3

    def __init__(self, config: JdbcSourceConfig) -> None:
        super().__init__(config)
        self.engine: Engine | None = None
        self._conn: Connection | None = None
        self._result: Result[Any] | None = None
        self._raw: Any = None
        self._cursor: Any = None
        self._fetch: Any = None
        self._exhausted = False
        self._keys: list[str] = []
        self.last_key: Any = None
        self.page = 0
        self.total = 0

    def identity(self, job_name: str) -> dict[str, Any]:
        """The database (URL without credentials), the table or the query, and the key: a
        position is a key value of that table, or a row count of that query."""
        cfg = self.config
        ident: dict[str, Any] = {
            "type": self.type_name,
            "url": url_identity(cfg.url),
            "table": cfg.table,
            "schema": cfg.schema,
            "key": cfg.key,
        }
        if cfg.table is None and cfg.key is None:
            ident["query"] = cfg.query  # the position counts rows of exactly this query
        return ident

    # --- open and validate ---------------------------------------------------------

    async def check_connection(self) -> str | None:
        """``validate --connect``: the database answers (a connection opens)."""
        return await asyncio.to_thread(engines.reachable, self.config.url)

    async def open(self, ctx: RuntimeContext, restored_position: dict[str, Any] | None) -> None:
        await super().open(ctx, restored_position)
        try:
            self.engine = engines.acquire(self.config.url)
        except FieldError as exc:
            raise config_error(ctx, "url", exc.message) from None
        await asyncio.to_thread(self._validate)
        if restored_position:
            self.last_key = restored_position.get(
                "last_key", restored_position.get("last_processed_id")
            )
            self.page = int(restored_position.get("current_page", 0))
            self.total = int(
                restored_position.get("total_processed", restored_position.get("processed_rows", 0))
            )

    def _validate(self) -> None:
        assert self.engine is not None
        cfg, ctx = self.config, self.ctx
        try:
            self.engine.connect().close()
        except DBAPIError as exc:
            message = drivers.cannot_connect(cfg.url, self.engine.dialect.driver, exc.orig or exc)
            raise config_error(ctx, "url", message) from None
        if cfg.table is not None:
            try:
                self._table = Table(
                    cfg.table, MetaData(), schema=cfg.schema, autoload_with=self.engine
                )
            except NoSuchTableError:
                raise config_error(
                    ctx, "table", f"no table {cfg.table!r} in the database"
                ) from None
            names = set(self._table.columns.keys())
            wanted = [cfg.key or "", *(cfg.columns or [])]
            missing = [c for c in wanted if c not in names]
            if missing:
                raise config_error(
                    ctx,
                    "key" if cfg.key in missing else "columns",
                    f"table {cfg.table!r} has no column {missing[0]!r} "
                    f"(columns: {', '.join(sorted(names))})",
                )
            return
        try:
            with self.engine.connect() as conn:
                probe = conn.execute(text(f"SELECT * FROM ({cfg.query}) AS q WHERE 1 = 0"))
                names = set(probe.keys())
        except DBAPIError as exc:
            raise config_error(
                ctx, "query", f"the database rejected the query: {exc.orig or exc}"
            ) from None
        if cfg.key is not None and cfg.key not in names:
            raise config_error(
                ctx,
                "key",
                f"the query has no column {cfg.key!r} (columns: {', '.join(sorted(names))})",
            )

    # --- reading -------------------------------------------------------------------

    def _fetch_page(self) -> list[dict[str, Any]]:
        assert self.engine is not None
        cfg = self.config
        t = self._table
        cols = [t.c[c] for c in cfg.columns] if cfg.columns else list(t.c)
        key = t.c[cfg.key]  # type: ignore[index]
        stmt = select(*cols).order_by(key).limit(cfg.page_size)
        if self.last_key is not None:
            stmt = stmt.where(key > self.last_key)
        with self.engine.connect() as conn:
            return _dicts(conn.execute(stmt))

    async def _retrying(self, fn: Any) -> Any:
        delay = 0.5
        for attempt in range(self.MAX_RETRIES + 1):
            try:
                return await asyncio.to_thread(fn)
            except OperationalError as exc:
                if attempt == self.MAX_RETRIES:
                    raise RetriableConnectorError(
                        f"lost the database connection {self.MAX_RETRIES + 1} times: "
                        f"{exc.orig or exc}",
                        component=self.ctx.component,
                    ) from exc
                log.warning(
                    "%s: connection lost (%s); retrying in %.1f s",
                    self.ctx.component,
                    exc.orig,
                    delay,
                )
                self._close_stream()
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def _read_table(self) -> AsyncIterator[Batch]:
        cfg, size = self.config, self.ctx.batch_size
        key = cfg.key or ""
        while True:
            rows: list[dict[str, Any]] = await self._retrying(self._fetch_page)
            if not rows:
                return
            self.page += 1
            for start in range(0, len(rows), size):
                chunk = rows[start : start + size]
                self.last_key = chunk[-1][key]
                self.total += len(chunk)
                last = start + size >= len(rows)
                yield Batch(
                    chunk,
                    {
                        "last_key": self.last_key,
                        "current_page": self.page,
                        "page_size": cfg.page_size,
                        "total_processed": self.total,
                    },
                    checkpoint_after=last,
                )
            if len(rows) < cfg.page_size:
                return

    def _start_stream(self) -> None:
        assert self.engine is not None
        cfg = self.config
        sql, params = cfg.query or "", {}
        if cfg.key is not None:
            where = " WHERE q.{k} > :last" if self.last_key is not None else ""
            quoted = self.engine.dialect.identifier_preparer.quote(cfg.key)
            sql = f"SELECT * FROM ({sql}) AS q{where.format(k=quoted)} ORDER BY q.{quoted}"
            if self.last_key is not None:
                params = {"last": self.last_key}
        dialect = self.engine.dialect
        mysql_raw = mysql.is_mysql(dialect) and dialect.driver == "pymysql"
        if dialect.name == "postgresql" or mysql_raw:
            # The driver's own server-side cursor (psycopg: a named cursor; PyMySQL: an
            # unbuffered SSCursor): tuples straight from the driver, without SQLAlchemy
            # building a Row per record (a third of the read time).
            self._raw = self.engine.raw_connection()
            if mysql_raw:
                cursor = mysql.prepare_stream_connection(self._raw.driver_connection)
            else:
                cursor = self._raw.driver_connection.cursor(name=f"pipeline_{id(self):x}")
                cursor.itersize = cfg.fetch_size
            # both drivers take pyformat parameters
            pg_sql = sql.replace("%", "%%").replace(":last", "%(last)s") if params else sql
            cursor.execute(pg_sql, params or None)
            self._cursor = cursor
            self._keys = [str(d[0]) for d in cursor.description]
            self._fetch = cursor.fetchmany
        else:
            self._conn = self.engine.connect().execution_options(
                stream_results=True, yield_per=cfg.fetch_size
            )
            self._result = self._conn.execute(text(sql), params)
            self._keys = [str(k) for k in self._result.keys()]  # noqa: SIM118 - not a dict
            self._fetch = self._result.fetchmany
        if cfg.key is None and self.total:
            skipped = 0  # no id to seek to: skip what earlier runs processed
            while skipped < self.total:
                part = self._fetch(min(cfg.fetch_size, self.total - skipped))
                if not part:
                    break
                skipped += len(part)

    def _fetch_rows(self) -> list[dict[str, Any]]:
        if self._fetch is None:
            self._start_stream()
        assert self._fetch is not None
        keys = self._keys
        # fetch_size rows per trip to the worker thread (and, on PostgreSQL, per FETCH),
        # handed on in batch_size batches: a thread hop per 256 rows cost a fifth of the
        # read time on MariaDB
        rows = self._fetch(max(self.config.fetch_size, self.ctx.batch_size))
        if not rows:
            self._exhausted = True
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def _read_query(self) -> AsyncIterator[Batch]:
        key, size = self.config.key, self.ctx.batch_size
        while True:
            fetched: list[dict[str, Any]] = await self._retrying(self._fetch_rows)
            if not fetched:
                return
            for start in range(0, len(fetched), size):
                rows = fetched[start : start + size]
                self.total += len(rows)
                if key is not None:
                    self.last_key = rows[-1][key]
                position: dict[str, Any] = {"processed_rows": self.total}
                if key is not None:
                    position["last_processed_id"] = self.last_key
                yield Batch(rows, position)

    def read(self) -> AsyncIterator[Batch]:
        return self._read_table() if self.config.table is not None else self._read_query()

    # --- closing -------------------------------------------------------------------

    def _close_stream(self) -> None:
        self._fetch = None
        unread = not self._exhausted and self._cursor is not None
        self._exhausted = False
        engine = self.engine
        if unread and self._raw is not None and engine and mysql.is_mysql(engine.dialect):
            # Closing an unbuffered MySQL cursor reads the rest of its result (all of a
            # large query, after a cancel or a lost connection): drop the connection.
            raw, self._raw, self._cursor = self._raw, None, None
            try:
                raw.invalidate()
            except Exception:
                log.debug("dropping the streaming connection failed", exc_info=True)
        for name in ("_result", "_cursor", "_conn", "_raw"):
            resource = getattr(self, name)
            if resource is not None:
                setattr(self, name, None)
                try:
                    resource.close()
                except Exception:  # a broken connection may refuse even this
                    log.debug("closing %s failed", name, exc_info=True)

    async def close(self) -> None:
        await asyncio.to_thread(self._close_stream)
        if self.engine is not None:
            self.engine = None
            engines.release(self.config.url)
