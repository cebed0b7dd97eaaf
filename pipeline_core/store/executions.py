"""Execution records: status transitions, counts, errors, newest-first queries."""

from __future__ import annotations

import datetime as dt
import os
import socket

import attrs
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline_core.config.secrets import redact
from pipeline_core.errors import ExecutionNotFound, JobNotFound, LifecycleError
from pipeline_core.runtime.lifecycle import ACTIVE, check_transition
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.store import models as m

__all__ = [
    "AttemptRecord",
    "ExecutionRecord",
    "ExecutionStore",
    "LostOwnership",
    "Transition",
    "instance_name",
]

TERMINAL = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
_ACTIVE = [s.value for s in ACTIVE]


class LostOwnership(LifecycleError):
    """This instance no longer owns the execution (its lease expired and another took it)."""


def _redact(text: str | None) -> str | None:
    return redact(text) if text else text


def instance_name() -> str:
    """This runner process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_gone(owner: str | None) -> bool:
    """True when ``owner`` names a process of this host (``host:pid``) that no longer
    runs (or is a zombie): it is dead whatever its last heartbeat says. Owners on other
    hosts, or with names of their own, are judged by their heartbeat alone."""
    if not owner or owner.count(":") != 1:
        return False
    host, _, pid = owner.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        stat = open(f"/proc/{pid}/stat", "rb").read()  # noqa: SIM115 - tiny read
    except FileNotFoundError:
        return True
    except OSError:
        return False
    state = stat.rsplit(b")", 1)[-1].split()[0:1]
    return state in ([b"Z"], [b"X"])


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
    scheduled_time: dt.datetime | None = None
    paused: bool = False
    #: attempts started so far (a retry, a take-over and a resume each start one)
    attempt: int = 0
    #: the execution that replaced this one (it is closed and never runs again)
    superseded_by: str | None = None
    #: (execution id, checkpoint id) this execution started from, if it continues another
    resumed_from: tuple[str, int] | None = None


@attrs.frozen(kw_only=True)
class AttemptRecord:
    """One run of an execution by one owner."""

    attempt: int
    run_id: str
    owner_instance: str | None
    start_time: dt.datetime
    end_time: dt.datetime | None
    status: str
    processed_records: int
    failed_records: int
    end_reason: str | None


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
        scheduled_time=row.scheduled_time,
        paused=bool(row.paused),
        attempt=row.attempt or 0,
        superseded_by=row.superseded_by,
        resumed_from=(
            (row.resumed_from_execution, int(row.resumed_from_checkpoint))
            if row.resumed_from_execution and row.resumed_from_checkpoint is not None
            else None
        ),
    )


def add_execution(
    session: Session,
    job: m.JobDefinition,
    execution_id: str,
    *,
    now: dt.datetime,
    triggered_by: str,
    owner: str | None,
    job_version: int | None = None,
    retry_count: int = 0,
    message: str | None = None,
    **columns: object,
) -> m.Execution:
    """Insert a SCHEDULED execution of ``job`` and its first transition."""
    row = m.Execution(
        execution_id=execution_id,
        job_id=job.id,
        job_name=job.job_name,
        job_version=job_version if job_version is not None else job.version,
        status=ExecutionStatus.SCHEDULED.value,
        start_time=now,
        processed_records=0,
        failed_records=0,
        retry_count=retry_count,
        triggered_by=triggered_by,
        owner_instance=owner,
        heartbeat_time=now,
        scheduled_time=now,
        paused=False,
        attempt=0,
        **columns,
    )
    session.add(row)
    session.flush()
    session.add(
        m.ExecutionTransition(
            execution_id=execution_id,
            from_status=None,
            to_status=row.status,
            transition_time=now,
            message=message,
        )
    )
    return row


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
            row = add_execution(
                session,
                job,
                execution_id,
                now=now,
                triggered_by=triggered_by,
                owner=owner_instance or instance_name(),
                job_version=job_version,
                retry_count=retry_count,
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
        owner: str | None = None,
        **values: object,
    ) -> ExecutionRecord:
        """Move to ``to_status`` along an edge of the lifecycle state machine (else
        LifecycleError); a terminal status also sets end time, duration, counts and the
        error of ``result``. With ``owner``, LostOwnership unless that instance owns the
        execution. ``values`` set other columns in the same transaction."""
        now = m.utcnow()
        with Session(self.engine) as session, session.begin():
            row = self._row(session, execution_id, lock=True)
            if owner is not None and row.owner_instance != owner:
                raise LostOwnership(
                    f"execution {execution_id!r} is owned by {row.owner_instance!r} now, "
                    f"not {owner!r}"
                )
            # errors come redacted from the process that ran the job; redacted again
            # here for what this process resolved itself (an event trigger's options)
            self._move(session, row, to_status, now, _redact(message))
            if result is not None:
                row.processed_records = result.records_read
                row.failed_records = result.failed_records
                row.error_message = _redact(result.error)
                row.error_stack_trace = _redact(result.error_trace)
            for key, value in values.items():
                setattr(row, key, _redact(value) if isinstance(value, str) else value)
            session.flush()
            return _record(row)

    def finish(
        self,
        execution_id: str,
        to_status: ExecutionStatus,
        *,
        message: str | None = None,
        result: JobResult | None = None,
        owner: str | None = None,
        **values: object,
    ) -> ExecutionRecord:
        """The end of a run: like :meth:`transition`, but an execution stopped in the
        middle of a checkpoint first returns to RUNNING (the checkpoint did not happen),
        since CHECKPOINTING → COMPLETED / CANCELLED is not an edge."""
        current = self.get(execution_id).status
        if current is ExecutionStatus.CHECKPOINTING and to_status is not ExecutionStatus.FAILED:
            self.transition(
                execution_id, ExecutionStatus.RUNNING, message="checkpoint abandoned", owner=owner
            )
        return self.transition(
            execution_id, to_status, message=message, result=result, owner=owner, **values
        )

    @staticmethod
    def _move(
        session: Session,
        row: m.Execution,
        to_status: ExecutionStatus,
        now: dt.datetime,
        message: str | None,
    ) -> None:
        check_transition(row.status, to_status, row.execution_id)
        session.add(
            m.ExecutionTransition(
                execution_id=row.execution_id,
                from_status=row.status,
                to_status=to_status.value,
                transition_time=now,
                message=message,
            )
        )
        row.status = to_status.value
        row.heartbeat_time = now
        if to_status in TERMINAL:
            row.end_time = now
            row.duration_ms = int((now - row.start_time).total_seconds() * 1000)
            row.paused = False
        elif to_status is ExecutionStatus.SCHEDULED:
            row.end_time = row.duration_ms = None

    def request_control(self, execution_id: str, action: str) -> ExecutionRecord:
        """Leave "cancel" / "pause" / "resume" for the instance that owns the execution."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, execution_id, lock=True)
            if ExecutionStatus(row.status) not in ACTIVE:
                raise LifecycleError(
                    f"execution {execution_id!r} is {row.status}: there is nothing to {action}"
                )
            row.control_request = action
            return _record(row)

    def cancel_unowned(self, execution_id: str, message: str) -> bool:
        """Cancel a SCHEDULED execution no instance has claimed yet; False if it has one."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, execution_id, lock=True)
            if row.status != ExecutionStatus.SCHEDULED.value or row.owner_instance is not None:
                return False
            self._move(session, row, ExecutionStatus.CANCELLED, m.utcnow(), message)
            return True

    def set_paused(self, execution_id: str, paused: bool, owner: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._row(session, execution_id, lock=True)
            if row.owner_instance != owner:
                raise LostOwnership(
                    f"execution {execution_id!r} is owned by {row.owner_instance!r}"
                )
            row.paused = paused
            session.add(
                m.ExecutionTransition(
                    execution_id=execution_id,
                    from_status=row.status,
                    to_status=row.status,
                    transition_time=m.utcnow(),
                    message="paused" if paused else "resumed",
                )
            )

    def get(self, execution_id: str) -> ExecutionRecord:
        with Session(self.engine) as session:
            return _record(self._row(session, execution_id))

    def query(
        self,
        *,
        job: str | None = None,
        status: ExecutionStatus | str | None = None,
        limit: int = 50,
        owner: str | None = None,
        active: bool = False,
    ) -> list[ExecutionRecord]:
        """Newest first, optionally for one job, one status, one owner, or only active."""
        stmt = select(m.Execution).order_by(m.Execution.start_time.desc(), m.Execution.id.desc())
        if owner is not None:
            stmt = stmt.where(m.Execution.owner_instance == owner)
        if active:
            stmt = stmt.where(m.Execution.status.in_(_ACTIVE))
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
