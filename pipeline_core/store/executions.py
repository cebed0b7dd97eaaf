"""Execution records: status transitions, counts, errors, newest-first queries."""

from __future__ import annotations

import datetime as dt
import os
import socket

import attrs
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline_core.errors import ExecutionNotFound, JobNotFound
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.store import models as m

__all__ = ["ExecutionRecord", "ExecutionStore", "Transition", "instance_name"]

TERMINAL = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})


def instance_name() -> str:
    """This runner process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@attrs.frozen(kw_only=True)
class ExecutionRecord:
    execution_id: str
    job_name: str
    job_version: int | None
    status: ExecutionStatus
    start_time: dt.datetime
    end_time: dt.datetime | None
    duration_ms: int | None
    processed_records: int
    failed_records: int
    error_message: str | None
    error_stack_trace: str | None
    checkpoint_path: str | None
    retry_count: int
    triggered_by: str | None
    owner_instance: str | None
    heartbeat_time: dt.datetime | None


@attrs.frozen
class Transition:
    from_status: str | None
    to_status: str
    time: dt.datetime
    message: str | None


def _record(row: m.Execution) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=row.execution_id,
        job_name=row.job_name,
        job_version=row.job_version,
        status=ExecutionStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        duration_ms=row.duration_ms,
        processed_records=row.processed_records or 0,
        failed_records=row.failed_records or 0,
        error_message=row.error_message,
        error_stack_trace=row.error_stack_trace,
        checkpoint_path=row.checkpoint_path,
        retry_count=row.retry_count or 0,
        triggered_by=row.triggered_by,
        owner_instance=row.owner_instance,
        heartbeat_time=row.heartbeat_time,
    )


class ExecutionStore:
    """Writes and queries ``pipeline_job_execution`` and its transitions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _row(self, session: Session, execution_id: str, *, lock: bool = False) -> m.Execution:
        stmt = select(m.Execution).where(m.Execution.execution_id == execution_id)
        if lock:
            stmt = stmt.with_for_update()
        row = session.execute(stmt).scalar_one_or_none()
        if row is None:
            raise ExecutionNotFound(f"no execution {execution_id!r}")
        return row

    def create(
        self,
        job_name: str,
        execution_id: str,
        *,
        triggered_by: str = "MANUAL",
        job_version: int | None = None,
        retry_count: int = 0,
        owner_instance: str | None = None,
    ) -> ExecutionRecord:
        """A new execution of a registered job, in status SCHEDULED."""
        now = m.utcnow()
        with Session(self.engine) as session, session.begin():
            job = session.execute(
                select(m.JobDefinition).where(m.JobDefinition.job_name == job_name)
            ).scalar_one_or_none()
            if job is None:
                raise JobNotFound(f"no job named {job_name!r} is registered")
            row = m.Execution(
                execution_id=execution_id,
                job_id=job.id,
                job_name=job_name,
                job_version=job_version if job_version is not None else job.version,
                status=ExecutionStatus.SCHEDULED.value,
                start_time=now,
                processed_records=0,
                failed_records=0,
                retry_count=retry_count,
                triggered_by=triggered_by,
                owner_instance=owner_instance or instance_name(),
                heartbeat_time=now,
            )
            session.add(row)
            session.flush()
            session.add(
                m.ExecutionTransition(
                    execution_id=execution_id,
                    from_status=None,
                    to_status=row.status,
                    transition_time=now,
                )
            )
            session.flush()
            return _record(row)

    def transition(
        self,
        execution_id: str,
        to_status: ExecutionStatus,
        *,
        message: str | None = None,
        result: JobResult | None = None,
    ) -> ExecutionRecord:
        """Move to ``to_status``; a terminal status also sets end time, duration, counts
        and the error of ``result``."""
        now = m.utcnow()
        with Session(self.engine) as session, session.begin():
            row = self._row(session, execution_id, lock=True)
            session.add(
                m.ExecutionTransition(
                    execution_id=execution_id,
                    from_status=row.status,
                    to_status=to_status.value,
                    transition_time=now,
                    message=message,
                )
            )
            row.status = to_status.value
            row.heartbeat_time = now
            if result is not None:
                row.processed_records = result.records_read
                row.failed_records = result.failed_records
                row.error_message = result.error
                row.error_stack_trace = result.error_trace
            if to_status in TERMINAL:
                row.end_time = now
                row.duration_ms = int((now - row.start_time).total_seconds() * 1000)
            session.flush()
            return _record(row)

    def heartbeat(self, execution_id: str, *, processed: int, failed: int) -> None:
        """Progress and liveness of a running execution."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, execution_id)
            row.processed_records, row.failed_records = processed, failed
            row.heartbeat_time = m.utcnow()

    def get(self, execution_id: str) -> ExecutionRecord:
        with Session(self.engine) as session:
            return _record(self._row(session, execution_id))

    def query(
        self,
        *,
        job: str | None = None,
        status: ExecutionStatus | str | None = None,
        limit: int = 50,
    ) -> list[ExecutionRecord]:
        """Newest first, optionally for one job and/or one status."""
        stmt = select(m.Execution).order_by(m.Execution.start_time.desc(), m.Execution.id.desc())
        if job is not None:
            stmt = stmt.where(m.Execution.job_name == job)
        if status is not None:
            stmt = stmt.where(m.Execution.status == ExecutionStatus(status).value)
        with Session(self.engine) as session:
            return [_record(r) for r in session.execute(stmt.limit(limit)).scalars()]

    def transitions(self, execution_id: str) -> list[Transition]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(m.ExecutionTransition)
                .where(m.ExecutionTransition.execution_id == execution_id)
                .order_by(m.ExecutionTransition.id)
            ).scalars()
            return [
                Transition(r.from_status, r.to_status, r.transition_time, r.message) for r in rows
            ]
