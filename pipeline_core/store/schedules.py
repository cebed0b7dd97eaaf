"""``pipeline_job_schedule``: when each job runs, and firing triggers exactly once.

Firing is a database transaction: the schedule row (cron) or the job row (every other
trigger) is locked, the no-overlap rule is checked, and the new execution row is written
in the same transaction. With several runner instances on one PostgreSQL, a due cron row
is taken with ``FOR UPDATE SKIP LOCKED``: whichever instance locks it fires the tick and
moves ``next_trigger_time`` on; the others skip it. A tick missed while every instance
was down fires once (``next_trigger_time`` jumps to the next future tick).
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid

import attrs
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from pipeline_core.errors import JobAlreadyRunning, JobDisabled, JobNotFound
from pipeline_core.model.dependencies import check_dependencies as model_check_dependencies
from pipeline_core.model.schedule import ScheduleConfig, ScheduleType
from pipeline_core.runtime.lifecycle import ACTIVE
from pipeline_core.runtime.result import ExecutionStatus
from pipeline_core.store import models as m

__all__ = [
    "Fired",
    "ScheduleRecord",
    "ScheduleStore",
    "check_dependencies",
    "dependency_graph",
    "upsert_schedule",
]

_ACTIVE = [s.value for s in ACTIVE]


@attrs.frozen(kw_only=True)
class ScheduleRecord:
    job_name: str
    config: ScheduleConfig
    last_trigger_time: dt.datetime | None
    next_trigger_time: dt.datetime | None
    create_time: dt.datetime


@attrs.frozen(kw_only=True)
class Fired:
    """One trigger that fired: the execution it created, or why it was skipped."""

    job_name: str
    execution_id: str
    triggered_by: str
    scheduled_time: dt.datetime
    #: None if the execution was scheduled; else why not (it is recorded CANCELLED)
    skipped: str | None = None


def _config(row: m.JobSchedule) -> ScheduleConfig:
    return ScheduleConfig(
        type=ScheduleType(row.schedule_type),
        cron=row.cron_expression,
        timezone=row.timezone or "UTC",
        event_trigger=row.event_trigger,
        event_topic=row.event_topic,
        event_config=dict(row.event_config or {}),
        dependencies=tuple(d for d in (row.dependencies or "").split(",") if d),
        enabled=row.enabled,
    )


def _record(row: m.JobSchedule, job_name: str) -> ScheduleRecord:
    return ScheduleRecord(
        job_name=job_name,
        config=_config(row),
        last_trigger_time=row.last_trigger_time,
        next_trigger_time=row.next_trigger_time,
        create_time=row.create_time,
    )


def dependency_graph(session: Session) -> tuple[dict[str, list[str]], set[str]]:
    """(each registered job with a DEPENDENCY schedule → the jobs it waits for, the names
    of every registered job)."""
    names = dict(session.execute(select(m.JobDefinition.id, m.JobDefinition.job_name)).all())
    graph = {
        names[job]: [d for d in (deps or "").split(",") if d]
        for job, deps in session.execute(
            select(m.JobSchedule.job_id, m.JobSchedule.dependencies).where(
                m.JobSchedule.schedule_type == ScheduleType.DEPENDENCY.value
            )
        ).all()
        if job in names
    }
    return graph, set(names.values())


def check_dependencies(session: Session, job_id: int, config: ScheduleConfig) -> None:
    """A DEPENDENCY schedule names registered jobs and closes no cycle (a job waiting for
    itself, directly or through others, would trigger itself forever); DependencyConflict
    naming the unknown jobs or the cycle (``model/dependencies.py``)."""
    if config.type is not ScheduleType.DEPENDENCY:
        return
    graph, known = dependency_graph(session)
    me = session.execute(
        select(m.JobDefinition.job_name).where(m.JobDefinition.id == job_id)
    ).scalar_one()
    model_check_dependencies(me, config, graph, known)


def upsert_schedule(
    session: Session, job_id: int, config: ScheduleConfig, now: dt.datetime
) -> m.JobSchedule:
    """Write ``config`` as the schedule of job ``job_id`` (inside the caller's transaction),
    after :func:`check_dependencies`."""
    check_dependencies(session, job_id, config)
    row = session.execute(
        select(m.JobSchedule).where(m.JobSchedule.job_id == job_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        row = m.JobSchedule(job_id=job_id, create_time=now)
        session.add(row)
    changed_cron = (row.cron_expression, row.timezone) != (config.cron, config.timezone)
    row.schedule_type = config.type.value
    row.cron_expression = config.cron
    row.timezone = config.timezone
    row.event_trigger = config.event_trigger
    row.event_topic = config.event_topic
    row.event_config = dict(config.event_config) if config.event_config else None
    row.dependencies = ",".join(config.dependencies) or None
    row.enabled = config.enabled
    if config.type is ScheduleType.CRON:
        if changed_cron or row.next_trigger_time is None:
            row.next_trigger_time = config.cron_schedule().next_after(now)
    else:
        row.next_trigger_time = None
    session.flush()
    return row


def _active_execution(session: Session, job_id: int) -> str | None:
    return session.execute(
        select(m.Execution.execution_id)
        .where(m.Execution.job_id == job_id, m.Execution.status.in_(_ACTIVE))
        .limit(1)
    ).scalar_one_or_none()


def _allows_concurrent(job: m.JobDefinition) -> bool:
    import orjson

    return bool(orjson.loads(job.dag_definition).get("config", {}).get("allow_concurrent"))


def fire_in(
    session: Session,
    job: m.JobDefinition,
    *,
    triggered_by: str,
    scheduled_time: dt.datetime,
    now: dt.datetime,
    message: str | None = None,
) -> Fired:
    """Create the execution of one fired trigger (SCHEDULED, no owner yet: any runner
    instance may claim it), or record it as skipped when the job is still active."""
    execution_id = uuid.uuid4().hex
    # the job row lock serialises every trigger of this job, whichever instance fires it
    session.execute(
        select(m.JobDefinition.id).where(m.JobDefinition.id == job.id).with_for_update()
    )
    active = None if _allows_concurrent(job) else _active_execution(session, job.id)
    status = ExecutionStatus.SCHEDULED if active is None else ExecutionStatus.CANCELLED
    skipped = f"skipped: execution {active} of this job is still active" if active else None
    row = m.Execution(
        execution_id=execution_id,
        job_id=job.id,
        job_name=job.job_name,
        job_version=job.version,
        status=status.value,
        start_time=now,
        processed_records=0,
        failed_records=0,
        retry_count=0,
        triggered_by=triggered_by,
        scheduled_time=scheduled_time,
        owner_instance=None,
        heartbeat_time=None,
        paused=False,
    )
    if skipped:
        row.end_time, row.duration_ms, row.error_message = now, 0, skipped
    session.add(row)
    session.flush()
    session.add(
        m.ExecutionTransition(
            execution_id=execution_id,
            from_status=None,
            to_status=ExecutionStatus.SCHEDULED.value,
            transition_time=now,
            message=message or f"triggered by {triggered_by}",
        )
    )
    if skipped:
        session.add(
            m.ExecutionTransition(
                execution_id=execution_id,
                from_status=ExecutionStatus.SCHEDULED.value,
                to_status=ExecutionStatus.CANCELLED.value,
                transition_time=now,
                message=skipped,
            )
        )
    session.flush()
    return Fired(
        job_name=job.job_name,
        execution_id=execution_id,
        triggered_by=triggered_by,
        scheduled_time=scheduled_time,
        skipped=skipped,
    )


class ScheduleStore:
    """Read and write schedules; fire triggers transactionally."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _job(self, session: Session, job_name: str, *, lock: bool = False) -> m.JobDefinition:
        stmt = select(m.JobDefinition).where(m.JobDefinition.job_name == job_name)
        if lock:
            stmt = stmt.with_for_update()
        job = session.execute(stmt).scalar_one_or_none()
        if job is None:
            raise JobNotFound(f"no job named {job_name!r} is registered")
        return job

    def put(self, job_name: str, config: ScheduleConfig) -> ScheduleRecord:
        with Session(self.engine) as session, session.begin():
            job = self._job(session, job_name)
            return _record(upsert_schedule(session, job.id, config, m.utcnow()), job_name)

    def get(self, job_name: str) -> ScheduleRecord | None:
        with Session(self.engine) as session:
            job = self._job(session, job_name)
            row = session.execute(
                select(m.JobSchedule).where(m.JobSchedule.job_id == job.id)
            ).scalar_one_or_none()
            return _record(row, job_name) if row else None

    def delete(self, job_name: str) -> bool:
        with Session(self.engine) as session, session.begin():
            job = self._job(session, job_name)
            row = session.execute(
                select(m.JobSchedule).where(m.JobSchedule.job_id == job.id)
            ).scalar_one_or_none()
            if row is None:
                return False
            session.delete(row)
            return True

    def list(self, schedule_type: ScheduleType | None = None) -> list[ScheduleRecord]:
        stmt = select(m.JobSchedule, m.JobDefinition.job_name).join(
            m.JobDefinition, m.JobDefinition.id == m.JobSchedule.job_id
        )
        if schedule_type is not None:
            stmt = stmt.where(m.JobSchedule.schedule_type == schedule_type.value)
        with Session(self.engine) as session:
            return [
                _record(row, name)
                for row, name in session.execute(stmt.order_by(m.JobDefinition.job_name))
            ]

    # --- firing --------------------------------------------------------------------

    def trigger(
        self,
        job_name: str,
        *,
        triggered_by: str = "MANUAL",
        message: str | None = None,
        raise_if_running: bool = True,
    ) -> Fired:
        """Fire a MANUAL / EVENT / DEPENDENCY trigger of ``job_name`` now.

        JobDisabled for a disabled job; a job still active (and not ``allow_concurrent``)
        gets a skipped record and, with ``raise_if_running``, JobAlreadyRunning."""
        now = m.utcnow()
        with Session(self.engine) as session, session.begin():
            job = self._job(session, job_name, lock=True)  # serialises triggers of one job
            if not job.enabled:
                raise JobDisabled(f"job {job_name!r} is disabled; enable it to run it")
            fired = fire_in(
                session,
                job,
                triggered_by=triggered_by,
                scheduled_time=now,
                now=now,
                message=message,
            )
        if fired.skipped and raise_if_running:
            raise JobAlreadyRunning(f"job {job_name!r}: {fired.skipped}")
        return fired

    def fire_due_cron(
        self, now: dt.datetime | None = None, limit: int = 50
    ) -> builtins.list[Fired]:
        """Fire every CRON schedule whose next tick is due — each in exactly one instance."""
        now = now or m.utcnow()
        fired: builtins.list[Fired] = []
        with Session(self.engine) as session, session.begin():
            rows = session.execute(
                select(m.JobSchedule, m.JobDefinition)
                .join(m.JobDefinition, m.JobDefinition.id == m.JobSchedule.job_id)
                .where(
                    m.JobSchedule.schedule_type == ScheduleType.CRON.value,
                    m.JobSchedule.enabled.is_(True),
                    m.JobSchedule.next_trigger_time <= now,
                )
                .order_by(m.JobSchedule.next_trigger_time)
                .limit(limit)
                .with_for_update(skip_locked=True, of=m.JobSchedule)
            ).all()
            for schedule, job in rows:
                tick = schedule.next_trigger_time
                assert tick is not None
                schedule.last_trigger_time = tick
                schedule.next_trigger_time = _config(schedule).cron_schedule().next_after(now)
                if not job.enabled:
                    continue  # a disabled job never runs; its ticks pass by
                fired.append(
                    fire_in(
                        session,
                        job,
                        triggered_by="CRON",
                        scheduled_time=tick,
                        now=now,
                        message=f"cron tick {tick:%Y-%m-%d %H:%M:%S} UTC",
                    )
                )
        return fired

    def fire_dependencies(self, now: dt.datetime | None = None) -> builtins.list[Fired]:
        """Fire each DEPENDENCY schedule whose upstream jobs all completed since its own
        last trigger (or since the schedule was created)."""
        now = now or m.utcnow()
        fired: builtins.list[Fired] = []
        with Session(self.engine) as session, session.begin():
            rows = session.execute(
                select(m.JobSchedule, m.JobDefinition)
                .join(m.JobDefinition, m.JobDefinition.id == m.JobSchedule.job_id)
                .where(
                    m.JobSchedule.schedule_type == ScheduleType.DEPENDENCY.value,
                    m.JobSchedule.enabled.is_(True),
                    m.JobDefinition.enabled.is_(True),
                )
                .with_for_update(skip_locked=True, of=m.JobSchedule)
            ).all()
            for schedule, job in rows:
                since = schedule.last_trigger_time or schedule.create_time
                upstream = [d for d in (schedule.dependencies or "").split(",") if d]
                ends = [self._completed_since(session, name, since) for name in upstream]
                if not upstream or None in ends:
                    continue
                if not _allows_concurrent(job) and _active_execution(session, job.id):
                    continue  # wait until the running one is done; nothing is lost
                # Never before the completions that satisfied it: an execution may end
                # (its end_time taken by the finishing process) after ``now`` was taken
                # and still be seen by this pass; the next pass must not count it again,
                # and the downstream run must not seem to start before its upstream ended.
                at = max([now, *(e for e in ends if e is not None)])
                schedule.last_trigger_time = at
                fired.append(
                    fire_in(
                        session,
                        job,
                        triggered_by="DEPENDENCY",
                        scheduled_time=at,
                        now=at,
                        message="upstream completed: " + ", ".join(upstream),
                    )
                )
        return fired

    @staticmethod
    def _completed_since(session: Session, job_name: str, since: dt.datetime) -> dt.datetime | None:
        """The end of ``job_name``'s latest execution COMPLETED after ``since``, or None."""
        latest: dt.datetime | None = session.execute(
            select(func.max(m.Execution.end_time)).where(
                m.Execution.job_name == job_name,
                m.Execution.status == ExecutionStatus.COMPLETED.value,
                m.Execution.end_time > since,
            )
        ).scalar()
        return latest

    def next_trigger_time(self, job_name: str) -> dt.datetime | None:
        record = self.get(job_name)
        return record.next_trigger_time if record else None
