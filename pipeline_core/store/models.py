"""SQLAlchemy models of the metadata database.

The five tables of the original design keep their names and columns. Two additions:

- ``pipeline_job_definition_version`` keeps every version of a job's definition, so
  ``pipeline_job_definition`` can stay one row per job (``job_name`` unique, holding the
  latest version) while ``get(name, version)`` reads history;
- ``pipeline_job_execution_transition`` records every lifecycle transition with its time;
- ``pipeline_job_execution_log`` keeps the newest log lines of each execution (a
  bounded tail, numbered per execution by ``seq``).

``pipeline_job_execution`` also has ``job_version`` (which version ran) and, for several
runner instances sharing one database, ``owner_instance`` and ``heartbeat_time``. Index
names are prefixed by table where the original design reused a name (PostgreSQL index
names are per schema). All times are UTC.

On MySQL/MariaDB the tables are utf8mb4 with the binary collation (names compare as on
PostgreSQL: case- and accent-sensitive), text columns are LONGTEXT (TEXT stops at
64 KiB), JSON is MariaDB's JSON (LONGTEXT checked by ``json_valid``) and times are
``DATETIME(6)``: microseconds, as on the other databases, not whole seconds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Checkpoint",
    "Execution",
    "ExecutionAttempt",
    "ExecutionLog",
    "ExecutionTransition",
    "JobConfigRow",
    "JobDefinition",
    "JobDefinitionVersion",
    "JobSchedule",
    "RunnerInstance",
    "utcnow",
]

# BIGSERIAL on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDoc = JSON().with_variant(JSONB(), "postgresql")
# MySQL's TEXT holds 64 KiB; a definition, a stack trace or a config value may not fit.
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# MySQL's DATETIME keeps whole seconds unless told otherwise.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
#: table options on MySQL/MariaDB (ignored elsewhere)
MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def utcnow() -> dt.datetime:
    """Now, in UTC, without tzinfo (how every time is stored)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "pk": "pk_%(table_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        }
    )


def _now_column() -> Mapped[dt.datetime]:
    return mapped_column(Timestamp, nullable=False, default=utcnow, server_default=func.now())


class JobDefinition(Base):
    """One row per job: its handle (``job_name``) and its latest version."""

    __tablename__ = "pipeline_job_definition"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    job_type: Mapped[str] = mapped_column(String(50), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    dag_definition: Mapped[str] = mapped_column(LongText, nullable=False)
    description: Mapped[str | None] = mapped_column(LongText)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    create_time: Mapped[dt.datetime] = _now_column()
    update_time: Mapped[dt.datetime] = _now_column()
    created_by: Mapped[str | None] = mapped_column(String(100))
    updated_by: Mapped[str | None] = mapped_column(String(100))
    #: the latest version's job-file folder (see JobDefinitionVersion.base_dir)
    base_dir: Mapped[str | None] = mapped_column(LongText)

    __table_args__ = (
        Index("idx_job_definition_job_name", "job_name"),
        Index("idx_job_definition_enabled", "enabled"),
        Index("idx_job_definition_job_type", "job_type"),
        MYSQL_TABLE,
    )


class JobDefinitionVersion(Base):
    """Every version a job has had; version 1 is the registration."""

    __tablename__ = "pipeline_job_definition_version"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("pipeline_job_definition.id"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    job_type: Mapped[str] = mapped_column(String(50), nullable=False)
    dag_definition: Mapped[str] = mapped_column(LongText, nullable=False)
    description: Mapped[str | None] = mapped_column(LongText)
    #: sha256 of the canonical definition: re-importing an unchanged file adds no version
    definition_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    create_time: Mapped[dt.datetime] = _now_column()
    created_by: Mapped[str | None] = mapped_column(String(100))
    #: the absolute folder of the job file this version came from: its relative data
    #: paths and step functions resolve from there wherever it runs (migration 0007).
    #: NULL for a definition without a file (API, Python).
    base_dir: Mapped[str | None] = mapped_column(LongText)

    __table_args__ = (UniqueConstraint("job_id", "version"), MYSQL_TABLE)


class Execution(Base):
    __tablename__ = "pipeline_job_execution"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    job_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("pipeline_job_definition.id"), nullable=False
    )
    job_name: Mapped[str] = mapped_column(String(200), nullable=False)
    job_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(50), nullable=False)
    start_time: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False)
    end_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    processed_records: Mapped[int | None] = mapped_column(BigInteger, server_default=text("0"))
    failed_records: Mapped[int | None] = mapped_column(BigInteger, server_default=text("0"))
    error_message: Mapped[str | None] = mapped_column(LongText)
    error_stack_trace: Mapped[str | None] = mapped_column(LongText)
    checkpoint_path: Mapped[str | None] = mapped_column(String(500))
    retry_count: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    triggered_by: Mapped[str | None] = mapped_column(String(100))
    owner_instance: Mapped[str | None] = mapped_column(String(200))
    heartbeat_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    #: A manual checkpoint asked for by another process: "checkpoint" or "savepoint:NAME".
    checkpoint_request: Mapped[str | None] = mapped_column(String(200))
    #: "cancel" / "pause" / "resume" asked for by a process that does not own the execution.
    control_request: Mapped[str | None] = mapped_column(String(50))
    #: A paused STREAMING execution (its source stopped pulling); status stays RUNNING.
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    #: The trigger time this execution is for (a cron tick, an event's arrival).
    scheduled_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    #: How many attempts have started (a retry, a take-over and a resume each start one).
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    #: The execution that replaced this one: it is closed and never run again.
    superseded_by: Mapped[str | None] = mapped_column(String(100))
    #: The checkpoint this execution started from when it continues another execution
    #: (``run --resume``, a savepoint): where a retry or take-over restarts before it has
    #: checkpoints of its own.
    resumed_from_execution: Mapped[str | None] = mapped_column(String(100))
    resumed_from_checkpoint: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("idx_execution_id", "execution_id"),
        # (job_id, start_time): a backward scan serves "newest first"; an explicit DESC
        # cannot be reflected on SQLite, so migrations could not be checked there.
        Index("idx_job_id_start_time", "job_id", "start_time"),
        Index("idx_status", "status"),
        Index("idx_execution_job_name", "job_name"),
        MYSQL_TABLE,
    )


class ExecutionTransition(Base):
    """Every lifecycle transition of an execution, with its time."""

    __tablename__ = "pipeline_job_execution_transition"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("pipeline_job_execution.execution_id"), nullable=False
    )
    from_status: Mapped[str | None] = mapped_column(String(50))
    to_status: Mapped[str] = mapped_column(String(50), nullable=False)
    transition_time: Mapped[dt.datetime] = _now_column()
    message: Mapped[str | None] = mapped_column(LongText)

    __table_args__ = (Index("idx_transition_execution", "execution_id", "id"), MYSQL_TABLE)


class ExecutionAttempt(Base):
    """One run of an execution by one owner: from its start to its end (or the moment
    another owner found it dead), with its own counts and the reason it ended."""

    __tablename__ = "pipeline_job_execution_attempt"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("pipeline_job_execution.execution_id"), nullable=False
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    run_id: Mapped[str] = mapped_column(String(100), nullable=False)
    owner_instance: Mapped[str | None] = mapped_column(String(200))
    start_time: Mapped[dt.datetime] = _now_column()
    end_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    #: RUNNING while it lives; then COMPLETED / FAILED / CANCELLED / LOST / RELEASED
    status: Mapped[str] = mapped_column(String(50), nullable=False)
    processed_records: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text("0")
    )
    failed_records: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text("0")
    )
    end_reason: Mapped[str | None] = mapped_column(LongText)

    __table_args__ = (
        UniqueConstraint("execution_id", "attempt", name="uq_attempt_execution_attempt"),
        MYSQL_TABLE,
    )


class ExecutionLog(Base):
    """One log line of an execution: the newest lines only (the writer deletes the ones
    that fall out of the kept tail). ``seq`` numbers an execution's lines from 1, over
    all its attempts and owners."""

    __tablename__ = "pipeline_job_execution_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("pipeline_job_execution.execution_id"), nullable=False
    )
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    log_time: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False)
    level: Mapped[str] = mapped_column(String(20), nullable=False)
    logger: Mapped[str] = mapped_column(String(200), nullable=False)
    message: Mapped[str] = mapped_column(LongText, nullable=False)

    __table_args__ = (
        # the tail, "after seq" and the trimming all read this index
        UniqueConstraint("execution_id", "seq", name="uq_log_execution_seq"),
        MYSQL_TABLE,
    )


class Checkpoint(Base):
    __tablename__ = "pipeline_checkpoint"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("pipeline_job_execution.execution_id"), nullable=False
    )
    checkpoint_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    checkpoint_type: Mapped[str] = mapped_column(String(50), nullable=False)
    status: Mapped[str] = mapped_column(String(50), nullable=False)
    state_data: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False)
    storage_path: Mapped[str | None] = mapped_column(String(500))
    storage_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    create_time: Mapped[dt.datetime] = _now_column()
    complete_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    is_savepoint: Mapped[bool | None] = mapped_column(Boolean, server_default=text("false"))
    job_name: Mapped[str | None] = mapped_column(String(200))
    savepoint_name: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("execution_id", "checkpoint_id"),
        Index("idx_execution_checkpoint", "execution_id", "checkpoint_id"),
        Index("idx_create_time", "create_time"),
        Index("idx_checkpoint_job_status", "job_name", "status"),
        Index(
            "idx_savepoint",
            "is_savepoint",
            postgresql_where=text("is_savepoint = true"),
            sqlite_where=text("is_savepoint = 1"),
        ),
        MYSQL_TABLE,
    )


class JobConfigRow(Base):
    """A typed per-job config override (``config_type`` STRING / INT / BOOLEAN / JSON)."""

    __tablename__ = "pipeline_job_config"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("pipeline_job_definition.id"), nullable=False
    )
    config_key: Mapped[str] = mapped_column(String(200), nullable=False)
    config_value: Mapped[str] = mapped_column(LongText, nullable=False)
    config_type: Mapped[str] = mapped_column(String(50), nullable=False)
    description: Mapped[str | None] = mapped_column(LongText)
    create_time: Mapped[dt.datetime] = _now_column()
    update_time: Mapped[dt.datetime] = _now_column()

    __table_args__ = (
        UniqueConstraint("job_id", "config_key"),
        Index("idx_job_config", "job_id"),
        MYSQL_TABLE,
    )


class JobSchedule(Base):
    __tablename__ = "pipeline_job_schedule"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("pipeline_job_definition.id"), nullable=False, unique=True
    )
    schedule_type: Mapped[str] = mapped_column(String(50), nullable=False)
    cron_expression: Mapped[str | None] = mapped_column(String(100))
    event_topic: Mapped[str | None] = mapped_column(String(200))
    dependencies: Mapped[str | None] = mapped_column(LongText)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    #: IANA time zone the cron expression is read in (None = UTC).
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: EVENT: the trigger type a connector plugin registered (``rabbitmq``, ``kafka``, …)
    event_trigger: Mapped[str | None] = mapped_column(String(100))
    #: EVENT: the trigger's options (connection etc.), secrets as ``${env:…}`` references.
    event_config: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    last_trigger_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    next_trigger_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    create_time: Mapped[dt.datetime] = _now_column()

    __table_args__ = (
        Index("idx_schedule_job", "job_id"),
        Index(
            "idx_next_trigger",
            "next_trigger_time",
            postgresql_where=text("enabled = true"),
            sqlite_where=text("enabled = 1"),
        ),
        MYSQL_TABLE,
    )


class RunnerInstance(Base):
    """A ``pipeline-run serve`` process: alive while its heartbeat is fresh."""

    __tablename__ = "pipeline_runner_instance"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    host: Mapped[str] = mapped_column(String(200), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_time: Mapped[dt.datetime] = _now_column()
    heartbeat_time: Mapped[dt.datetime] = _now_column()
    stopped_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    __table_args__ = (MYSQL_TABLE,)
