"""``pipeline_checkpoint`` rows: the metadata database's CheckpointRepository."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.errors import ExecutionNotFound
from pipeline_core.store import models as m

__all__ = ["DbCheckpointRepository"]


def _info(row: m.Checkpoint) -> CheckpointInfo:
    return CheckpointInfo(
        job_name=row.job_name or "",
        execution_id=row.execution_id,
        checkpoint_id=row.checkpoint_id,
        checkpoint_type=row.checkpoint_type,
        status=row.status,
        state_data=dict(row.state_data or {}),
        storage_path=row.storage_path,
        storage_size_bytes=row.storage_size_bytes,
        create_time=row.create_time,
        complete_time=row.complete_time,
        is_savepoint=bool(row.is_savepoint),
        savepoint_name=row.savepoint_name,
    )


class DbCheckpointRepository:
    """Checkpoint metadata in ``pipeline_checkpoint`` (state_data JSON/JSONB)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def begin(
        self,
        *,
        job_name: str,
        execution_id: str,
        checkpoint_id: int,
        checkpoint_type: str,
        savepoint_name: str | None,
    ) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(
                m.Checkpoint(
                    execution_id=execution_id,
                    job_name=job_name,
                    checkpoint_id=checkpoint_id,
                    checkpoint_type=checkpoint_type,
                    status="PENDING",
                    state_data={},
                    create_time=m.utcnow(),
                    is_savepoint=savepoint_name is not None,
                    savepoint_name=savepoint_name,
                )
            )

    def _set(
        self, execution_id: str, checkpoint_id: int, owner: str | None = None, **values: Any
    ) -> None:
        with Session(self.engine) as session, session.begin():
            if owner is not None:
                holder = session.execute(
                    select(m.Execution.owner_instance)
                    .where(m.Execution.execution_id == execution_id)
                    .with_for_update()
                ).scalar_one_or_none()
                if holder != owner:
                    from pipeline_core.store.executions import LostOwnership

                    raise LostOwnership(
                        f"checkpoint {checkpoint_id} of execution {execution_id!r} refused: "
                        f"the execution is owned by {holder!r} now, not {owner!r}"
                    )
            session.execute(
                update(m.Checkpoint)
                .where(
                    m.Checkpoint.execution_id == execution_id,
                    m.Checkpoint.checkpoint_id == checkpoint_id,
                )
                .values(**values)
            )
            if values.get("status") == "COMPLETED":
                session.execute(
                    update(m.Execution)
                    .where(m.Execution.execution_id == execution_id)
                    .values(checkpoint_path=values["storage_path"])
                )

    def complete(
        self,
        *,
        execution_id: str,
        checkpoint_id: int,
        state_data: dict[str, Any],
        storage_path: str,
        size: int,
        owner: str | None = None,
    ) -> None:
        """Mark a checkpoint COMPLETED; with ``owner``, only while that owner holds the
        execution (checked under its row lock, in the same transaction): a run that lost
        its lease can never complete a checkpoint, so its sinks never commit."""
        self._set(
            execution_id,
            checkpoint_id,
            owner,
            status="COMPLETED",
            state_data=state_data,
            storage_path=storage_path,
            storage_size_bytes=size,
            complete_time=m.utcnow(),
        )

    def fail(self, *, execution_id: str, checkpoint_id: int, reason: str) -> None:
        self._set(execution_id, checkpoint_id, status="FAILED", complete_time=m.utcnow())

    def _query(self, job_name: str) -> Any:
        return select(m.Checkpoint).where(m.Checkpoint.job_name == job_name)

    def latest_completed(self, job_name: str) -> CheckpointInfo | None:
        with Session(self.engine) as session:
            row = session.execute(
                self._query(job_name)
                .where(m.Checkpoint.status == "COMPLETED")
                .order_by(m.Checkpoint.complete_time.desc(), m.Checkpoint.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            return _info(row) if row else None

    def latest_completed_of_execution(self, execution_id: str) -> CheckpointInfo | None:
        """Where a retried or taken-over execution resumes."""
        with Session(self.engine) as session:
            row = session.execute(
                select(m.Checkpoint)
                .where(
                    m.Checkpoint.execution_id == execution_id, m.Checkpoint.status == "COMPLETED"
                )
                .order_by(m.Checkpoint.checkpoint_id.desc())
                .limit(1)
            ).scalar_one_or_none()
            return _info(row) if row else None

    def get(self, execution_id: str, checkpoint_id: int) -> CheckpointInfo | None:
        with Session(self.engine) as session:
            row = session.execute(
                select(m.Checkpoint).where(
                    m.Checkpoint.execution_id == execution_id,
                    m.Checkpoint.checkpoint_id == checkpoint_id,
                )
            ).scalar_one_or_none()
            return _info(row) if row else None

    def next_checkpoint_id(self, execution_id: str) -> int:
        """1 + the highest checkpoint id the execution used (in any status)."""
        with Session(self.engine) as session:
            top = session.execute(
                select(func.max(m.Checkpoint.checkpoint_id)).where(
                    m.Checkpoint.execution_id == execution_id
                )
            ).scalar_one_or_none()
            return (top or 0) + 1

    def savepoint(self, job_name: str, name: str) -> CheckpointInfo | None:
        with Session(self.engine) as session:
            row = session.execute(
                self._query(job_name)
                .where(m.Checkpoint.savepoint_name == name, m.Checkpoint.status == "COMPLETED")
                .order_by(m.Checkpoint.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            return _info(row) if row else None

    def list(self, job_name: str) -> list[CheckpointInfo]:
        """Newest first."""
        with Session(self.engine) as session:
            rows = session.execute(
                self._query(job_name).order_by(
                    m.Checkpoint.create_time.desc(), m.Checkpoint.id.desc()
                )
            ).scalars()
            return [_info(r) for r in rows]

    def delete(self, info: CheckpointInfo) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(
                delete(m.Checkpoint).where(
                    m.Checkpoint.execution_id == info.execution_id,
                    m.Checkpoint.checkpoint_id == info.checkpoint_id,
                )
            )

    def request(self, execution_id: str, savepoint: str | None = None) -> None:
        """Ask a running execution (in any process) to checkpoint soon."""
        with Session(self.engine) as session, session.begin():
            row = session.execute(
                select(m.Execution)
                .where(m.Execution.execution_id == execution_id)
                .with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise ExecutionNotFound(f"no execution {execution_id!r}")
            row.checkpoint_request = f"savepoint:{savepoint}" if savepoint else "checkpoint"

    def take_request(self, execution_id: str) -> str | None:
        with Session(self.engine) as session:  # a cheap read first: this is polled
            pending = session.execute(
                select(m.Execution.checkpoint_request).where(
                    m.Execution.execution_id == execution_id
                )
            ).scalar_one_or_none()
        if pending is None:
            return None
        with Session(self.engine) as session, session.begin():
            row = session.execute(
                select(m.Execution)
                .where(m.Execution.execution_id == execution_id)
                .with_for_update()
            ).scalar_one_or_none()
            if row is None or row.checkpoint_request is None:
                return None
            request, row.checkpoint_request = row.checkpoint_request, None
            return request
