"""Paged reads for the API's list routes: one SQL statement per page.

Each page query returns its rows and the number of rows matching the filter (``count(*)
OVER ()``, evaluated after WHERE and before LIMIT), so a page of jobs with their schedule
and last execution costs one round trip whatever the number of jobs — the former list
made three queries per job and parsed every stored definition. Only a page past the end
(no row to carry the count) asks a second ``count(*)``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

import attrs
import orjson
from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session, aliased

from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.errors import ExecutionNotFound, JobNotFound
from pipeline_core.model.schedule import ScheduleConfig
from pipeline_core.runtime.result import ExecutionStatus
from pipeline_core.store import models as m
from pipeline_core.store.checkpoints import _info as checkpoint_info
from pipeline_core.store.executions import ExecutionRecord
from pipeline_core.store.executions import _record as execution_record
from pipeline_core.store.schedules import ScheduleRecord
from pipeline_core.store.schedules import _config as schedule_config

__all__ = ["JobSummary", "LastExecution", "Listing", "Page", "VersionInfo"]

T = TypeVar("T")

#: what ``last_status`` accepts besides an execution status: jobs that never ran
NEVER_RUN = "NEVER"


@attrs.frozen
class Page(Generic[T]):
    """One page of a list: its items, how many match in all, and where it starts."""

    items: list[T]
    total: int
    limit: int
    offset: int


@attrs.frozen
class LastExecution:
    execution_id: str
    status: ExecutionStatus
    start_time: dt.datetime


@attrs.frozen(kw_only=True)
class JobSummary:
    """A job as a list shows it: no definition (it may be megabytes), no config rows."""

    job_name: str
    job_type: str
    version: int
    latest_version: int
    description: str | None
    enabled: bool
    create_time: dt.datetime
    update_time: dt.datetime
    created_by: str | None
    updated_by: str | None
    schedule: ScheduleRecord | None
    last: LastExecution | None


@attrs.frozen
class VersionInfo:
    version: int
    create_time: dt.datetime
    created_by: str | None


_CONFIG_COLUMNS = [
    m.JobSchedule.schedule_type,
    m.JobSchedule.cron_expression,
    m.JobSchedule.timezone,
    m.JobSchedule.event_trigger,
    m.JobSchedule.event_topic,
    m.JobSchedule.event_config,
    m.JobSchedule.dependencies,
    m.JobSchedule.enabled,
]
_SCHEDULE_COLUMNS = [
    *_CONFIG_COLUMNS,
    m.JobSchedule.last_trigger_time,
    m.JobSchedule.next_trigger_time,
    m.JobSchedule.create_time,
]


@functools.lru_cache(maxsize=4096)
def _schedule_config(key: tuple[Any, ...]) -> ScheduleConfig:
    """A stored schedule's config, built once per distinct row: building one checks its
    cron expression (two croniter parses, 2 ms — the whole query takes 10 ms for 500 jobs)."""
    fields = dict(zip((c.key for c in _CONFIG_COLUMNS), key, strict=True))
    fields["event_config"] = orjson.loads(fields["event_config"])
    return schedule_config(SimpleNamespace(**fields))  # type: ignore[arg-type]


def _schedule(r: Any) -> ScheduleRecord:
    key = tuple(
        orjson.dumps(r.s_event_config) if c.key == "event_config" else r._mapping[f"s_{c.key}"]
        for c in _CONFIG_COLUMNS
    )
    return ScheduleRecord(
        job_name=r.job_name,
        config=_schedule_config(key),
        last_trigger_time=r.s_last_trigger_time,
        next_trigger_time=r.s_next_trigger_time,
        create_time=r.s_create_time,
    )


_JOB_COLUMNS = [
    "job_name",
    "job_type",
    "version",
    "description",
    "enabled",
    "create_time",
    "update_time",
    "created_by",
    "updated_by",
]


def _ran() -> ColumnElement[bool]:
    """Not a skipped trigger: a job's last execution is its newest one but those that
    were recorded as skipped (CANCELLED before any attempt, "skipped: …": the job was
    still running), which would show CANCELLED for a job that is RUNNING."""
    x = m.Execution
    return ~(
        (x.status == ExecutionStatus.CANCELLED.value)
        & (x.attempt == 0)
        & func.coalesce(x.error_message, "").like("skipped:%")
    )


class Listing:
    """The paged queries (read-only) over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _page(
        self,
        stmt: Any,
        count: Any,
        build: Callable[[Any], T],
        limit: int,
        offset: int,
        *,
        paged: bool = False,
    ) -> Page[T]:
        if not paged:  # else ``stmt`` already has its _total, limit and offset
            stmt = stmt.add_columns(func.count().over().label("_total"))
            stmt = stmt.limit(limit).offset(offset)
        # Core rows, not ORM entities: building entities cost four times the query's time
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            if rows:
                total = int(rows[0]._total)
            else:  # past the end: no row carries the count
                total = int(conn.execute(count).scalar_one()) if offset else 0
        return Page([build(r) for r in rows], total, limit, offset)

    def jobs(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        search: str | None = None,
        job_type: str | None = None,
        enabled: bool | None = None,
        last_status: str | None = None,
    ) -> Page[JobSummary]:
        """Jobs by name with their schedule and newest execution. ``search`` matches a
        part of the name or description (case-insensitive); ``last_status`` is an
        execution status or ``NEVER``."""
        j, s = m.JobDefinition, m.JobSchedule
        e = aliased(m.Execution)
        newest = (
            select(m.Execution.id)
            .where(m.Execution.job_id == j.id, _ran())
            .order_by(m.Execution.start_time.desc(), m.Execution.id.desc())
            .limit(1)
            .correlate(j)
            .scalar_subquery()
        )
        where: list[ColumnElement[bool]] = []
        if search:
            needle = search.lower()
            where.append(
                func.lower(j.job_name).contains(needle, autoescape=True)
                | func.lower(func.coalesce(j.description, "")).contains(needle, autoescape=True)
            )
        if job_type is not None:
            where.append(j.job_type == job_type)
        if enabled is not None:
            where.append(j.enabled == enabled)
        if last_status == NEVER_RUN:
            where.append(e.id.is_(None))
        elif last_status is not None:
            where.append(e.status == ExecutionStatus(last_status).value)
        base = j.__table__.outerjoin(s, s.job_id == j.id).outerjoin(e, e.id == newest)
        stmt = (
            select(
                j.job_name,
                j.job_type,
                j.version,
                j.description,
                j.enabled,
                j.create_time,
                j.update_time,
                j.created_by,
                j.updated_by,
                *(c.label(f"s_{c.key}") for c in _SCHEDULE_COLUMNS),
                e.execution_id,
                e.status,
                e.start_time,
            )
            .select_from(base)
            .where(*where)
            .order_by(j.job_name)
        )
        count = select(func.count()).select_from(base).where(*where)
        paged = last_status is None
        if paged:
            # Page the jobs first, then join the page's schedules and newest executions:
            # the count over every match then needs no per-job subquery (PostgreSQL ran
            # all 500 of them for a page of 50).
            page = (
                select(*(c for c in j.__table__.columns if c.key != "dag_definition"))
                .add_columns(func.count().over().label("_total"))
                .where(*where)
                .order_by(j.job_name)
                .limit(limit)
                .offset(offset)
                .subquery("page")
            )
            newest_of_page = (
                select(m.Execution.id)
                .where(m.Execution.job_id == page.c.id, _ran())
                .order_by(m.Execution.start_time.desc(), m.Execution.id.desc())
                .limit(1)
                .correlate(page)
                .scalar_subquery()
            )
            stmt = (
                select(
                    *(page.c[c] for c in _JOB_COLUMNS),
                    *(c.label(f"s_{c.key}") for c in _SCHEDULE_COLUMNS),
                    e.execution_id,
                    e.status,
                    e.start_time,
                    page.c._total,
                )
                .select_from(
                    page.outerjoin(s, s.job_id == page.c.id).outerjoin(e, e.id == newest_of_page)
                )
                .order_by(page.c.job_name)
            )

        def build(r: Any) -> JobSummary:
            return JobSummary(
                job_name=r.job_name,
                job_type=r.job_type,
                version=r.version,
                latest_version=r.version,
                description=r.description,
                enabled=r.enabled,
                create_time=r.create_time,
                update_time=r.update_time,
                created_by=r.created_by,
                updated_by=r.updated_by,
                schedule=None if r.s_schedule_type is None else _schedule(r),
                last=None
                if r.execution_id is None
                else LastExecution(r.execution_id, ExecutionStatus(r.status), r.start_time),
            )

        return self._page(stmt, count, build, limit, offset, paged=paged)

    def executions(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        job: str | None = None,
        status: str | None = None,
    ) -> Page[ExecutionRecord]:
        """Executions newest first, optionally of one job and/or in one status."""
        x = m.Execution
        where: list[ColumnElement[bool]] = []
        if job is not None:
            where.append(x.job_name == job)
        if status is not None:
            where.append(x.status == ExecutionStatus(status).value)
        stmt = select(x).where(*where).order_by(x.start_time.desc(), x.id.desc())
        count = select(func.count()).select_from(x).where(*where)
        return self._page(stmt, count, execution_record, limit, offset)

    def checkpoints(
        self, execution_id: str, *, limit: int = 100, offset: int = 0
    ) -> Page[CheckpointInfo]:
        """An execution's checkpoints, oldest first; ExecutionNotFound if there is no such
        execution (the same statement tells: the execution's row is outer-joined)."""
        x, c = m.Execution, m.Checkpoint
        stmt = (
            select(x.execution_id.label("_execution"), *c.__table__.columns)
            .select_from(x)
            .outerjoin(c, c.execution_id == x.execution_id)
            .where(x.execution_id == execution_id)
            .order_by(c.checkpoint_id)
        )
        count = select(func.count()).select_from(c).where(c.execution_id == execution_id)
        page = self._page(stmt, count, lambda r: r, limit, offset)
        if not page.items:
            with Session(self.engine) as session:
                if not session.execute(select(x.id).where(x.execution_id == execution_id)).first():
                    raise ExecutionNotFound(f"no execution {execution_id!r}")
        items = [checkpoint_info(r) for r in page.items if r.checkpoint_id is not None]
        # an execution without checkpoints is one row with no checkpoint: 0, not 1
        total = page.total if items or offset else 0
        return Page(items, total, limit, offset)

    def versions(self, job_name: str, *, limit: int = 100, offset: int = 0) -> Page[VersionInfo]:
        """A job's versions, newest first; JobNotFound if there is no such job."""
        j, v = m.JobDefinition, m.JobDefinitionVersion
        stmt = (
            select(j.id, v.version, v.create_time, v.created_by)
            .select_from(j)
            .outerjoin(v, v.job_id == j.id)
            .where(j.job_name == job_name)
            .order_by(v.version.desc())
        )
        count = (
            select(func.count())
            .select_from(j)
            .join(v, v.job_id == j.id)
            .where(j.job_name == job_name)
        )

        def build(r: Any) -> VersionInfo:
            return VersionInfo(r.version, r.create_time, r.created_by)

        page = self._page(stmt, count, build, limit, offset)
        if not page.items and not offset:
            raise JobNotFound(f"no job named {job_name!r} is registered")
        if not page.items:  # past the end: does the job exist?
            with Session(self.engine) as session:
                if not session.execute(select(j.id).where(j.job_name == job_name)).first():
                    raise JobNotFound(f"no job named {job_name!r} is registered")
        return page
