"""The ``jdbc`` sink: append (COPY on PostgreSQL, LOAD DATA LOCAL INFILE on MySQL/MariaDB),
upsert, replace; optionally exactly-once.

Direct modes write each batch in its own transaction (at-least-once: a replay after a
crash writes the records since the last checkpoint again; ``upsert`` makes that
idempotent).

``exactly_once`` and ``replace`` write batches into a staging table
``{table}__pipeline_stage`` tagged with (job, execution, checkpoint id). When a checkpoint
completes, one transaction moves its rows into the table and records the checkpoint in
``pipeline_sink_progress``; a restored execution first finishes the move for the
checkpoint it restores from (if the crash came before it) and deletes every other staged
row of the job. ``replace`` moves nothing until the job's input is exhausted: then the
table's old contents are replaced by the staged rows in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError, OperationalError

from pipeline_connector_jdbc import drivers, engines, mysql
from pipeline_connector_jdbc.config import JdbcSinkConfig
from pipeline_connector_jdbc.source import config_error
from pipeline_core import (
    DeliveryGuarantee,
    FatalConnectorError,
    FieldError,
    RetriableConnectorError,
    RuntimeContext,
    Sink,
)

__all__ = ["JdbcSink"]

_SEQ = "_pipeline_seq"

log = logging.getLogger("pipeline_connector_jdbc")

_TAGS = ("_pipeline_job", "_pipeline_execution", "_pipeline_checkpoint")


def _json_dumps(value: Any) -> bytes | str:
    """JSON/JSONB values for COPY: orjson (the stdlib encoder was a third of the sink
    thread's time on a paged API → PostgreSQL job); what orjson refuses (integers beyond
    64 bits) goes through the stdlib as before."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value)


class JdbcSink(Sink[JdbcSinkConfig]):
    type_name = "jdbc"
    config_cls = JdbcSinkConfig
    #: Rows per write unless the job sets sink_batch_size: each write is a trip to the
    #: database thread and a COPY chunk or a multi-row INSERT (docs/benchmarks.md).
    preferred_batch_size = 1000

    def __init__(self, config: JdbcSinkConfig) -> None:
        super().__init__(config)
        self.engine: Engine | None = None
        self.epoch = 1  # the id of the checkpoint the rows written now belong to
        self.ending = False
        self._conn: Connection | None = None
        self._open_copy: tuple[Any, Any, Any] | None = None
        self._loader: mysql.BulkLoader | None = None
        self._mysql = False
        self._pymysql = False

    @property
    def guarantee(self) -> DeliveryGuarantee:  # type: ignore[override]
        staged = self.config.exactly_once or self.config.mode == "replace"
        return DeliveryGuarantee.EXACTLY_ONCE if staged else DeliveryGuarantee.AT_LEAST_ONCE

    @property
    def staged(self) -> bool:
        return self.config.exactly_once or self.config.mode == "replace"

    # --- open ----------------------------------------------------------------------

    async def check_connection(self) -> str | None:
        """``validate --connect``: the database answers (a connection opens)."""
        return await asyncio.to_thread(engines.reachable, self.config.url)

    async def open(self, ctx: RuntimeContext) -> None:
        await super().open(ctx)
        try:
            self.engine = engines.acquire(self.config.url)
        except FieldError as exc:
            raise config_error(ctx, "url", exc.message) from None
        await asyncio.to_thread(self._prepare_tables)

    def _prepare_tables(self) -> None:
        assert self.engine is not None
        cfg, ctx = self.config, self.ctx
        dialect = self.engine.dialect.name
        self._mysql = mysql.is_mysql(self.engine.dialect)
        if cfg.mode == "upsert" and dialect not in ("postgresql", "sqlite") and not self._mysql:
            raise config_error(
                ctx,
                "mode",
                f"upsert is supported on PostgreSQL, MySQL/MariaDB and SQLite, not {dialect}",
            )
        try:
            self.table = Table(cfg.table, MetaData(), schema=cfg.schema, autoload_with=self.engine)
        except NoSuchTableError:
            raise config_error(ctx, "table", f"no table {cfg.table!r} in the database") from None
        except OperationalError as exc:
            message = drivers.cannot_connect(cfg.url, self.engine.dialect.driver, exc.orig or exc)
            raise config_error(ctx, "url", message) from None
        self._pymysql = self._mysql and self.engine.dialect.driver == "pymysql"
        if self._pymysql and cfg.copy and mysql.local_infile_enabled(self.engine):
            self._loader = mysql.BulkLoader()
        self.columns = [str(c.name) for c in self.table.columns]
        self._convert = mysql.converters(self.table, self.columns) if self._mysql else {}
        self._known = frozenset(self.columns)
        self._row = itemgetter(*self.columns)
        missing = [k for k in cfg.key or [] if k not in self.columns]
        if missing:
            raise config_error(
                ctx,
                "key",
                f"table {cfg.table!r} has no column {missing[0]!r} "
                f"(columns: {', '.join(self.columns)})",
            )
        if not self.staged:
            return
        md = MetaData()
        self.stage = Table(
            f"{cfg.table}__pipeline_stage",
            md,
            *[Column(c.name, c.type, nullable=True) for c in self.table.columns],
            Column("_pipeline_job", String(200), nullable=False),
            Column("_pipeline_execution", String(100), nullable=False),
            Column("_pipeline_checkpoint", Integer, nullable=False),
            # the order rows were staged in (SQLite's rowid serves there): an upsert keeps
            # the last row of each key
            *(
                [Column(_SEQ, BigInteger, Identity(always=False), nullable=False)]
                if self.engine.dialect.name == "postgresql"
                else [Column(_SEQ, BigInteger, primary_key=True, autoincrement=True)]
                if self._mysql
                else []
            ),
            schema=cfg.schema,
        )
        self.progress = Table(
            "pipeline_sink_progress",
            md,
            Column("sink_id", String(400), primary_key=True),
            Column("execution_id", String(100), nullable=False),
            Column("checkpoint_id", Integer, nullable=False),
            schema=cfg.schema,
        )
        md.create_all(self.engine)
        self._add_seq_column()
        self.sink_id = f"{ctx.job_name}:{cfg.schema or ''}.{cfg.table}"
        # Rows a crashed execution staged are moved or dropped by restore_commit; a fresh
        # execution drops them at its first commit (see _move).

    # --- writing -------------------------------------------------------------------

    def _check_columns(self, records: list[dict[str, Any]]) -> None:
        known = self._known
        for r in records:
            if r.keys() <= known:
                continue
            extra = r.keys() - known
            if extra:
                raise FatalConnectorError(
                    f"record has fields that table {self.config.table!r} does not: {sorted(extra)} "
                    f"(record {r!r:.200})",
                    component=self.ctx.component,
                )

    def _copy(
        self, conn: Connection, table: Table, columns: list[str], rows: list[tuple[Any, ...]]
    ) -> None:
        """COPY rows into ``table``. One COPY stays open across batches until the
        transaction commits: a COPY per batch costs a round trip each (measured: a third
        of the write time)."""
        from psycopg.types.json import Jsonb, set_json_dumps

        if self._open_copy is None:
            raw = conn.connection.driver_connection
            set_json_dumps(_json_dumps, context=raw)
            preparer = conn.dialect.identifier_preparer
            target = preparer.format_table(table)
            cols = ", ".join(preparer.quote(c) for c in columns)
            cursor = raw.cursor()  # type: ignore[union-attr]
            context = cursor.copy(f"COPY {target} ({cols}) FROM STDIN")
            self._open_copy = (cursor, context, context.__enter__())
        copy = self._open_copy[2]
        json_cols = self._json_columns(table, columns)
        write = copy.write_row
        for row in rows:
            if json_cols:
                row = tuple(
                    Jsonb(v) if i in json_cols and v is not None else v for i, v in enumerate(row)
                )
            write(row)

    def _json_columns(self, table: Table, columns: list[str]) -> set[int]:
        return {
            i
            for i, c in enumerate(columns)
            if isinstance(table.c[c].type, postgresql.JSON | postgresql.JSONB)
        }

    def _end_copy(self, ok: bool) -> None:
        if self._open_copy is not None:
            cursor, context, _copy = self._open_copy
            self._open_copy = None
            try:
                if ok:
                    context.__exit__(None, None, None)
                else:
                    context.__exit__(RuntimeError, RuntimeError("rolled back"), None)
            finally:
                cursor.close()

    def _tuples(self, records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Rows in column order; a missing field is NULL."""
        row = self._row
        try:
            out = [row(r) for r in records]
        except KeyError:
            cols = self.columns
            return [tuple(r.get(c) for c in cols) for r in records]
        return out if len(self.columns) > 1 else [(v,) for v in out]

    def _connection(self) -> Connection:
        """The open transaction that writes go into until the next checkpoint commits it
        (one commit per checkpoint, not per batch: far fewer WAL flushes)."""
        if self._conn is None:
            assert self.engine is not None
            self._conn = self.engine.connect()
            self._conn.begin()
        return self._conn

    def _commit_pending(self) -> None:
        self._end_copy(ok=True)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                if self._loader is not None:
                    with self._mysql_errors():
                        self._loader.flush(conn)
                conn.commit()
            finally:
                if self._loader is not None:
                    self._loader.discard()
                conn.close()

    def _rollback_pending(self) -> None:
        try:
            self._end_copy(ok=False)
        except Exception:  # the COPY may already be broken with its connection
            log.debug("ending the COPY failed", exc_info=True)
        if self._loader is not None:
            self._loader.discard()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.rollback()
            finally:
                conn.close()

    def _write(self, records: list[dict[str, Any]]) -> None:
        assert self.engine is not None
        self._check_columns(records)
        cfg = self.config
        pg = self.engine.dialect.name == "postgresql"
        conn = self._connection()
        if self._pymysql:
            self._write_mysql(conn, records)
        elif self.staged:
            tags = (self.ctx.job_name, self.ctx.run_id, self.epoch)
            if pg and cfg.copy:
                self._copy(
                    conn,
                    self.stage,
                    [*self.columns, *_TAGS],
                    [t + tags for t in self._tuples(records)],
                )
            else:
                names = [*self.columns, *_TAGS]
                conn.execute(
                    insert(self.stage),
                    [dict(zip(names, t + tags, strict=True)) for t in self._tuples(records)],
                )
        elif cfg.mode == "upsert":
            conn.execute(
                self._upsert(insert_table=self.table),
                [{c: r.get(c) for c in self.columns} for r in records],
            )
        elif pg and cfg.copy:
            self._copy(conn, self.table, self.columns, self._tuples(records))
        else:
            conn.execute(insert(self.table), [{c: r.get(c) for c in self.columns} for r in records])

    def _write_mysql(self, conn: Connection, records: list[dict[str, Any]]) -> None:
        """Bulk load (or multi-row INSERT) straight through PyMySQL; upsert as INSERT …
        ON DUPLICATE KEY UPDATE."""
        cfg = self.config
        rows = self._tuples(records)
        if self.staged:
            tags = (self.ctx.job_name, self.ctx.run_id, self.epoch)
            table, columns, rows = self.stage, [*self.columns, *_TAGS], [t + tags for t in rows]
        else:
            table, columns = self.table, self.columns
        with self._mysql_errors():
            if cfg.mode == "upsert" and not self.staged:
                keys = cfg.key or []
                update = [c for c in self.columns if c not in keys]
                params = mysql.params(rows, self._convert)
                mysql.insert_many(conn, table, columns, params, update=update, keys=keys)
                return
            loader = self._loader
            if loader is not None:
                try:
                    loader.add(table, columns, rows)
                except mysql.UnsupportedValue:
                    loader.flush(conn)  # e.g. bytes: this batch as INSERTs, in order
                else:
                    if loader.pending >= loader.FLUSH_ROWS:
                        loader.flush(conn)
                    return
            mysql.insert_many(conn, table, columns, mysql.params(rows, self._convert))

    @contextlib.contextmanager
    def _mysql_errors(self) -> Iterator[None]:
        try:
            yield
        except mysql.LoadRefused as exc:
            raise FatalConnectorError(str(exc), component=self.ctx.component) from None
        except Exception as exc:
            # PyMySQL's own errors, unwrapped: a lost connection is retriable like any
            # other (SQLAlchemy's OperationalError), the rest fail the job as they are
            if mysql.is_operational(exc):
                raise OperationalError("INSERT", None, exc) from exc
            raise

    def _upsert(self, insert_table: Table, from_select: Any = None) -> Any:
        assert self.engine is not None
        if self._mysql:
            my = mysql_dialect.insert(insert_table)
            if from_select is not None:
                my = my.from_select(self.columns, from_select)
            keys = self.config.key or []
            sets = {c: my.inserted[c] for c in self.columns if c not in keys}
            return my.on_duplicate_key_update(sets or {k: insert_table.c[k] for k in keys})
        mod = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt = mod.insert(insert_table)
        if from_select is not None:
            stmt = stmt.from_select(self.columns, from_select)
        keys = self.config.key or []
        updates = {c: stmt.excluded[c] for c in self.columns if c not in keys}
        if not updates:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        return stmt.on_conflict_do_update(index_elements=keys, set_=updates)

    async def write(self, records: list[Any]) -> None:
        if not records:
            return
        delay = 0.5
        for attempt in range(self.config.max_retries + 1):
            try:
                await asyncio.to_thread(self._write, records)
                return
            except OperationalError as exc:
                # the open transaction is gone with the connection: what it held since
                # the last checkpoint is replayed from there (a retry of the whole job)
                if self._conn is not None:
                    await asyncio.to_thread(self._rollback_pending)
                    raise RetriableConnectorError(
                        f"lost the connection to {self.config.table!r} mid-transaction: "
                        f"{exc.orig or exc}",
                        component=self.ctx.component,
                    ) from exc
                if attempt == self.config.max_retries:
                    raise RetriableConnectorError(
                        f"writing to {self.config.table!r} failed {attempt + 1} times: "
                        f"{exc.orig or exc}",
                        component=self.ctx.component,
                    ) from exc
                log.warning("%s: %s; retrying in %.1f s", self.ctx.component, exc.orig, delay)
                await asyncio.sleep(delay)
                delay *= 2

    # --- staged commits ------------------------------------------------------------

    def _add_seq_column(self) -> None:
        """A stage table made by an earlier version has no order column: add it."""
        assert self.engine is not None
        if self.engine.dialect.name != "postgresql" and not self._mysql:
            return
        have = {
            c["name"] for c in inspect(self.engine).get_columns(self.stage.name, self.stage.schema)
        }
        if _SEQ not in have:
            target = self.engine.dialect.identifier_preparer.format_table(self.stage)
            kind = (
                "BIGINT NOT NULL AUTO_INCREMENT UNIQUE"
                if self._mysql
                else "BIGINT GENERATED BY DEFAULT AS IDENTITY"
            )
            ddl = f"ALTER TABLE {target} ADD COLUMN {_SEQ} {kind}"
            with self.engine.begin() as conn:
                conn.execute(text(ddl))

    def _seq(self) -> Any:
        assert self.engine is not None
        if self.engine.dialect.name == "postgresql" or self._mysql:
            return self.stage.c[_SEQ]
        return literal_column(f"{self.stage.name}.rowid")

    def _staged_rows(self, execution_id: str, upto: int) -> Any:
        s = self.stage.c
        return (
            s._pipeline_job == self.ctx.job_name,
            s._pipeline_execution == execution_id,
            s._pipeline_checkpoint <= upto,
        )

    def _move(self, conn: Connection, execution_id: str, upto: int) -> None:
        """Move staged rows of ``execution_id`` up to checkpoint ``upto`` into the table
        and record the checkpoint — one transaction (the caller's)."""
        where = self._staged_rows(execution_id, upto)
        rows = select(*[self.stage.c[c] for c in self.columns]).where(*where)
        if self.config.mode == "upsert":
            # one row per key, the last staged (input order): a checkpoint of keyed running
            # totals holds many rows of one key, and ON CONFLICT may touch a row only once
            seq = self._seq()
            keys = [self.stage.c[k] for k in self.config.key or []]
            last = select(func.max(seq)).where(*where).group_by(*keys)
            rows = rows.where(seq.in_(last))
            # (the WHERE above also keeps SQLite from reading ON CONFLICT as a join clause)
            conn.execute(self._upsert(self.table, rows))
        else:
            conn.execute(insert(self.table).from_select(self.columns, rows))
        conn.execute(delete(self.stage).where(*where))
        # Whatever other executions of this job left staged can never be committed.
        s = self.stage.c
        conn.execute(
            delete(self.stage).where(
                s._pipeline_job == self.ctx.job_name,
                s._pipeline_execution != self.ctx.run_id,
            )
        )
        self._record_progress(conn, execution_id, upto)

    def _record_progress(self, conn: Connection, execution_id: str, checkpoint_id: int) -> None:
        p = self.progress
        conn.execute(delete(p).where(p.c.sink_id == self.sink_id))
        conn.execute(
            insert(p).values(
                sink_id=self.sink_id, execution_id=execution_id, checkpoint_id=checkpoint_id
            )
        )

    def _delete_stage(self, keep: tuple[str, int] | None) -> None:
        assert self.engine is not None
        s = self.stage.c
        with self.engine.begin() as conn:
            stmt = delete(self.stage).where(s._pipeline_job == self.ctx.job_name)
            if keep is not None:
                execution_id, upto = keep
                stmt = stmt.where(
                    ~((s._pipeline_execution == execution_id) & (s._pipeline_checkpoint <= upto))
                )
            conn.execute(stmt)

    def _commit(self, checkpoint_id: int) -> None:
        assert self.engine is not None
        with self.engine.begin() as conn:
            if self.config.mode == "replace":
                if not self.ending:
                    return  # replace swaps once, after the last record
                conn.execute(delete(self.table))
                self._move(conn, self.ctx.run_id, checkpoint_id)
            else:
                self._move(conn, self.ctx.run_id, checkpoint_id)

    async def prepare_commit(self, checkpoint_id: int) -> dict[str, Any] | None:
        # Durable before the checkpoint completes: direct rows, or staged rows.
        await asyncio.to_thread(self._commit_pending)
        if not self.staged:
            return None
        self.epoch = checkpoint_id + 1
        return {"execution": self.ctx.run_id, "checkpoint": checkpoint_id}

    async def on_checkpoint_complete(self, checkpoint_id: int) -> None:
        if self.staged:
            await asyncio.to_thread(self._commit, checkpoint_id)

    async def finish(self) -> bool:
        """The input is exhausted: the next completed checkpoint is the last one."""
        self.ending = True
        return self.config.mode == "replace"  # the swap needs that final checkpoint

    async def restore_commit(self, checkpoint_id: int, prepared: dict[str, Any] | None) -> None:
        if not self.staged or not prepared:
            return
        old_execution, upto = str(prepared["execution"]), int(prepared["checkpoint"])

        def recover() -> None:
            assert self.engine is not None
            if self.config.mode != "replace":
                with self.engine.begin() as conn:
                    # moves what is left of that checkpoint (nothing if it was moved
                    # already) and drops the rest of the crashed execution's rows
                    self._move(conn, old_execution, upto)
            else:
                self._delete_stage(keep=(old_execution, upto))
                # the restored rows keep counting as this sink's, under the new execution
                with self.engine.begin() as conn:
                    s = self.stage.c
                    conn.execute(
                        self.stage.update()
                        .where(s._pipeline_job == self.ctx.job_name)
                        .values(_pipeline_execution=self.ctx.run_id, _pipeline_checkpoint=0)
                    )

        await asyncio.to_thread(recover)

    async def close(self) -> None:
        await asyncio.to_thread(self._rollback_pending)  # uncommitted: replayed on resume
        if self._loader is not None:
            self._loader.close()
            self._loader = None
        if self.engine is not None:
            self.engine = None
            engines.release(self.config.url)
