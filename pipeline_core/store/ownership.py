"""Who runs an execution: claims, heartbeats, leases, take-over, attempts, supersession.

The rules (docs/operations.md, "Ownership"):

- An active execution has at most one owner (``owner_instance``) and that owner
  heart-beats (``heartbeat_time``). A foreground ``pipeline-run run`` is an owner like a
  ``serve`` instance.
- Every run of an execution by one owner is an *attempt* (``pipeline_job_execution_attempt``):
  a retry, a take-over and a ``run --resume`` each start one, under a fresh run id. An
  attempt whose owner was found dead is closed ``LOST`` with the reason.
- An owner whose heartbeat is older than the lease is dead: its executions may be taken
  over (released to SCHEDULED, then claimed) — unless they were *superseded*: a newer
  execution of the same job replaced them in the transaction that created or continued
  it. A superseded execution is CANCELLED with ``superseded_by`` set and never runs again.

Every check that decides ownership is made under the row lock of the execution.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from pipeline_core.config.secrets import redact
from pipeline_core.errors import JobNotFound, LifecycleError
from pipeline_core.runtime.lifecycle import ACTIVE
from pipeline_core.runtime.result import ExecutionStatus as S
from pipeline_core.store import models as m
from pipeline_core.store.executions import (
    AttemptRecord,
    ExecutionRecord,
    ExecutionStore,
    _record,
    add_execution,
    owner_is_gone,
)

__all__ = ["OwnershipStore", "RunClaim"]

_ACTIVE = [s.value for s in ACTIVE]


class RunClaim:
    """What :meth:`OwnershipStore.open_run` decided: the execution to run here."""

    def __init__(self, record: ExecutionRecord, *, continued: bool, superseded: list[str]) -> None:
        self.record = record
        #: True: an existing (dead) execution is continued under its own id
        self.continued = continued
        #: executions closed because this one replaces them
        self.superseded = superseded


def _close_attempt(
    session: Session, execution_id: str, status: str, reason: str, now: dt.datetime
) -> None:
    session.execute(
        update(m.ExecutionAttempt)
        .where(
            m.ExecutionAttempt.execution_id == execution_id,
            m.ExecutionAttempt.end_time.is_(None),
        )
        .values(status=status, end_reason=reason, end_time=now)
    )


def _fail_pending_checkpoints(session: Session, execution_id: str, now: dt.datetime) -> None:
    session.execute(
        update(m.Checkpoint)
        .where(m.Checkpoint.execution_id == execution_id, m.Checkpoint.status == "PENDING")
        .values(status="FAILED", complete_time=now)
    )


class OwnershipStore:
    """Claims, heartbeats, take-over, attempts and supersession of executions."""

    def __init__(self, engine: Engine, executions: ExecutionStore) -> None:
        self.engine = engine
        self.executions = executions

    # --- helpers under a row lock ---------------------------------------------------

    def _requeue(self, session: Session, row: m.Execution, message: str, now: dt.datetime) -> None:
        """An active execution whose run stopped goes (FAILED →) SCHEDULED, unowned."""
        move = self.executions._move
        if row.status != S.SCHEDULED.value:
            if row.status == S.CHECKPOINTING.value:
                move(session, row, S.RUNNING, now, "checkpoint abandoned")
            move(session, row, S.FAILED, now, message)
            move(session, row, S.SCHEDULED, now, "to be resumed from its last checkpoint")
        else:
            session.add(
                m.ExecutionTransition(
                    execution_id=row.execution_id,
                    from_status=row.status,
                    to_status=row.status,
                    transition_time=now,
                    message=message,
                )
            )
        row.owner_instance, row.paused, row.heartbeat_time = None, False, None
        _fail_pending_checkpoints(session, row.execution_id, now)

    def _supersede(self, session: Session, row: m.Execution, by: str, now: dt.datetime) -> None:
        move = self.executions._move
        reason = f"superseded by execution {by}"
        if row.status == S.CHECKPOINTING.value:
            move(session, row, S.RUNNING, now, "checkpoint abandoned")
        move(session, row, S.CANCELLED, now, reason)
        row.superseded_by, row.owner_instance, row.control_request = by, None, None
        _close_attempt(session, row.execution_id, "LOST", reason, now)
        _fail_pending_checkpoints(session, row.execution_id, now)

    # --- claiming ---------------------------------------------------------------------

    def claim(self, instance: str, limit: int) -> list[ExecutionRecord]:
        """Take up to ``limit`` SCHEDULED executions that no instance owns (oldest first).
        ``SKIP LOCKED``: instances claiming at the same moment never get the same one."""
        if limit <= 0:
            return []
        now = m.utcnow()
        with Session(self.engine) as session, session.begin():
            rows = (
                session.execute(
                    select(m.Execution)
                    .where(
                        m.Execution.status == S.SCHEDULED.value,
                        m.Execution.owner_instance.is_(None),
                        m.Execution.superseded_by.is_(None),
                    )
                    .order_by(m.Execution.start_time, m.Execution.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            for row in rows:
                row.owner_instance, row.heartbeat_time = instance, now
            session.flush()
            return [_record(r) for r in rows]

    def claim_one(self, execution_id: str, instance: str) -> ExecutionRecord | None:
        """Claim one SCHEDULED execution, unowned or already ours; None otherwise."""
        with Session(self.engine) as session, session.begin():
            done = session.execute(
                update(m.Execution)
                .where(
                    m.Execution.execution_id == execution_id,
                    m.Execution.status == S.SCHEDULED.value,
                    m.Execution.superseded_by.is_(None),
                    (m.Execution.owner_instance.is_(None))
                    | (m.Execution.owner_instance == instance),
                )
                .values(owner_instance=instance, heartbeat_time=m.utcnow())
            )
        if not done.rowcount:  # type: ignore[attr-defined]
            return None
        return self.executions.get(execution_id)

    def open_run(
        self,
        job_name: str,
        instance: str,
        lease: dt.timedelta,
        *,
        resume_execution: str | None = None,
        resume_checkpoint: int | None = None,
        continue_execution: bool = True,
        triggered_by: str = "MANUAL",
    ) -> RunClaim:
        """Start a foreground run of ``job_name`` owned by ``instance``, in one transaction.

        ``resume_execution`` / ``resume_checkpoint``: the checkpoint restored. With
        ``continue_execution``, if that execution is still active and its owner is dead
        (stale heartbeat, or a process of this host that is gone), it is *continued* —
        same execution id, a new attempt; with no checkpoint to restore, the newest dead
        execution of the job is continued (from the start). Otherwise a new execution is
        created, which remembers the checkpoint it continues. Every other active
        execution of the job whose owner is dead (or that waits unowned) is superseded by
        the one returned. A
        job that is active under a live owner raises LifecycleError, unless the job sets
        ``allow_concurrent`` (then only the resumed execution itself must be dead)."""
        from pipeline_core.store.schedules import _allows_concurrent

        now = m.utcnow()
        cutoff = now - lease
        with Session(self.engine) as session, session.begin():
            job = session.execute(
                select(m.JobDefinition)
                .where(m.JobDefinition.job_name == job_name)
                .with_for_update()
            ).scalar_one_or_none()
            if job is None:
                raise JobNotFound(f"no job named {job_name!r} is registered")
            concurrent = _allows_concurrent(job)
            rows = (
                session.execute(
                    select(m.Execution)
                    .where(m.Execution.job_name == job_name, m.Execution.status.in_(_ACTIVE))
                    .order_by(m.Execution.id)
                    .with_for_update()
                )
                .scalars()
                .all()
            )

            def live(row: m.Execution) -> bool:
                return (
                    row.owner_instance is not None
                    and row.heartbeat_time is not None
                    and row.heartbeat_time >= cutoff
                    and not owner_is_gone(row.owner_instance)
                )

            for row in rows:
                if live(row) and (not concurrent or row.execution_id == resume_execution):
                    age = (now - row.heartbeat_time).total_seconds() if row.heartbeat_time else 0
                    raise LifecycleError(
                        f"job {job_name!r} is running as execution {row.execution_id} on "
                        f"{row.owner_instance} (heartbeat {age:.0f} s ago, lease "
                        f"{lease.total_seconds():g} s): stop that process (SIGTERM: it "
                        "checkpoints and stops), cancel the execution "
                        f"(POST /api/executions/{row.execution_id}/cancel), or wait for it"
                    )
            target = None
            if continue_execution and resume_execution is not None:
                target = next((r for r in rows if r.execution_id == resume_execution), None)
            elif continue_execution:
                # nothing to restore (killed before its first checkpoint): continue the
                # newest dead execution from the start rather than open another one
                dead = [r for r in rows if not live(r)]
                target = dead[-1] if dead else None
            if target is not None:
                previous = target.owner_instance
                if previous and owner_is_gone(previous):
                    why = f"owner {previous} exited (its process is gone); resumed by {instance}"
                elif previous:
                    why = f"owner {previous} stopped heart-beating; resumed by {instance}"
                else:
                    why = f"resumed by {instance}"
                _close_attempt(session, target.execution_id, "LOST", why, now)
                self._requeue(session, target, why, now)
                target.owner_instance, target.heartbeat_time = instance, now
                eid = target.execution_id
            else:
                eid = uuid.uuid4().hex
                row = add_execution(
                    session,
                    job,
                    eid,
                    now=now,
                    triggered_by=triggered_by,
                    owner=instance,
                    message=(
                        f"continues execution {resume_execution}" if resume_execution else None
                    ),
                    resumed_from_execution=resume_execution,
                    resumed_from_checkpoint=resume_checkpoint,
                )
                target = row
            superseded = []
            for row in rows:
                if row is target or live(row):
                    continue
                self._supersede(session, row, eid, now)
                superseded.append(row.execution_id)
            session.flush()
            return RunClaim(_record(target), continued=target in rows, superseded=superseded)

    # --- attempts ---------------------------------------------------------------------

    def start_attempt(self, execution_id: str, owner: str) -> tuple[int, str]:
        """Record a new attempt of an execution ``owner`` holds; returns its number and
        run id. The first attempt writes under the execution id (part files are named
        after it); any later one, here or elsewhere, under a fresh id."""
        from pipeline_core.store.executions import LostOwnership

        now = m.utcnow()
        with Session(self.engine) as session, session.begin():
            row = self.executions._row(session, execution_id, lock=True)
            if row.owner_instance != owner:
                raise LostOwnership(
                    f"execution {execution_id!r} is owned by {row.owner_instance!r} now, "
                    f"not {owner!r}"
                )
            _close_attempt(session, execution_id, "LOST", f"attempt by {owner} started", now)
            row.attempt = (row.attempt or 0) + 1
            run_id = execution_id if row.attempt == 1 else uuid.uuid4().hex
            session.add(
                m.ExecutionAttempt(
                    execution_id=execution_id,
                    attempt=row.attempt,
                    run_id=run_id,
                    owner_instance=owner,
                    start_time=now,
                    status="RUNNING",
                    processed_records=0,
                    failed_records=0,
                )
            )
            return row.attempt, run_id

    def end_attempt(
        self,
        execution_id: str,
        attempt: int,
        status: str,
        reason: str | None,
        *,
        processed: int,
        failed: int,
    ) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(m.ExecutionAttempt)
                .where(
                    m.ExecutionAttempt.execution_id == execution_id,
                    m.ExecutionAttempt.attempt == attempt,
                    m.ExecutionAttempt.end_time.is_(None),
                )
                .values(
                    status=status,
                    end_reason=redact(reason) if reason else reason,
                    end_time=m.utcnow(),
                    processed_records=processed,
                    failed_records=failed,
                )
            )

    def attempts(self, execution_id: str) -> list[AttemptRecord]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(m.ExecutionAttempt)
                .where(m.ExecutionAttempt.execution_id == execution_id)
                .order_by(m.ExecutionAttempt.attempt)
            ).scalars()
            return [
                AttemptRecord(
                    attempt=r.attempt,
                    run_id=r.run_id,
                    owner_instance=r.owner_instance,
                    start_time=r.start_time,
                    end_time=r.end_time,
                    status=r.status,
                    processed_records=r.processed_records,
                    failed_records=r.failed_records,
                    end_reason=r.end_reason,
                )
                for r in rows
            ]

    # --- heartbeats, leases, take-over ------------------------------------------------

    def beat(
        self, instance: str, progress: dict[str, tuple[int, int, int, int]]
    ) -> tuple[set[str], dict[str, str]]:
        """Heartbeat of every execution ``instance`` runs (``progress``: id → (processed,
        failed) of the execution, then of the current attempt). Returns the ids it still
        owns, and control requests ("cancel", "pause", "resume") other processes left for
        them (taken, so each is seen once)."""
        now = m.utcnow()
        requests: dict[str, str] = {}
        owned: set[str] = set()
        if not progress:
            return owned, requests
        with Session(self.engine) as session, session.begin():
            rows = session.execute(
                select(m.Execution)
                .where(
                    m.Execution.execution_id.in_(list(progress)),
                    m.Execution.owner_instance == instance,
                )
                .with_for_update()
            ).scalars()
            for row in rows:
                owned.add(row.execution_id)
                row.heartbeat_time = now
                processed, failed, a_processed, a_failed = progress[row.execution_id]
                row.processed_records, row.failed_records = processed, failed
                session.execute(
                    update(m.ExecutionAttempt)
                    .where(
                        m.ExecutionAttempt.execution_id == row.execution_id,
                        m.ExecutionAttempt.attempt == row.attempt,
                        m.ExecutionAttempt.end_time.is_(None),
                    )
                    .values(processed_records=a_processed, failed_records=a_failed)
                )
                if row.control_request:
                    requests[row.execution_id], row.control_request = row.control_request, None
            return owned, requests

    def owns(self, execution_id: str, instance: str, session: Session | None = None) -> bool:
        stmt = select(m.Execution.owner_instance).where(m.Execution.execution_id == execution_id)
        if session is not None:
            return session.execute(stmt.with_for_update()).scalar_one_or_none() == instance
        with Session(self.engine) as s:
            return s.execute(stmt).scalar_one_or_none() == instance

    def release(self, execution_id: str, message: str, *, owner: str | None = None) -> bool:
        """Give an execution back to the pool so that any instance resumes it from its
        last checkpoint: an active one goes FAILED → SCHEDULED, without an owner. Used on
        graceful shutdown and when an owner's lease expired. Pending checkpoints of the
        stopped run are marked FAILED."""
        now = m.utcnow()
        with Session(self.engine) as session, session.begin():
            row = self.executions._row(session, execution_id, lock=True)
            if owner is not None and row.owner_instance != owner:
                return False
            if S(row.status) not in ACTIVE or row.superseded_by is not None:
                return False
            _close_attempt(session, execution_id, "RELEASED", message, now)
            self._requeue(session, row, message, now)
            return True

    def expired(self, lease: dt.timedelta, limit: int = 20) -> list[tuple[str, str | None]]:
        """(execution id, owner) of owned active executions whose heartbeat is older than
        ``lease`` — their owner died or hangs."""
        cutoff = m.utcnow() - lease
        with Session(self.engine) as session:
            rows = session.execute(
                select(m.Execution.execution_id, m.Execution.owner_instance)
                .where(
                    m.Execution.status.in_(_ACTIVE),
                    m.Execution.owner_instance.is_not(None),
                    m.Execution.heartbeat_time < cutoff,
                    m.Execution.superseded_by.is_(None),
                )
                .limit(limit)
            ).all()
            return [(eid, owner) for eid, owner in rows]

    def take_over(self, execution_id: str, owner: str | None, lease: dt.timedelta) -> bool:
        """Release ``execution_id`` if ``owner`` still holds it, its heartbeat is still
        stale and nothing superseded it (all checked again under the row lock); its open
        attempt is closed LOST with the reason."""
        now = m.utcnow()
        cutoff = now - lease
        with Session(self.engine) as session, session.begin():
            row = session.execute(
                select(m.Execution)
                .where(m.Execution.execution_id == execution_id)
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if (
                row is None
                or row.owner_instance != owner
                or row.heartbeat_time is None
                or row.heartbeat_time >= cutoff
                or row.superseded_by is not None
                or S(row.status) not in ACTIVE
            ):
                return False
            why = f"owner {owner} stopped heart-beating (lease {lease.total_seconds():g} s)"
            _close_attempt(session, execution_id, "LOST", why, now)
            self._requeue(session, row, why, now)
            return True

    def active_count(self, job_name: str) -> int:
        with Session(self.engine) as session:
            return int(
                session.execute(
                    select(func.count())
                    .select_from(m.Execution)
                    .where(m.Execution.job_name == job_name, m.Execution.status.in_(_ACTIVE))
                ).scalar_one()
            )
