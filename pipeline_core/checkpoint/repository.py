"""Checkpoint metadata (the ``pipeline_checkpoint`` rows), behind a small interface.

The runtime talks to a :class:`CheckpointRepository`; the metadata database implements
it (``pipeline_core.store.checkpoints``), and :class:`InMemoryCheckpointRepository` serves
runs without a database (tests, ``--no-record``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import attrs

__all__ = ["CheckpointInfo", "CheckpointRepository", "InMemoryCheckpointRepository"]


@attrs.frozen(kw_only=True)
class CheckpointInfo:
    job_name: str
    execution_id: str
    checkpoint_id: int
    checkpoint_type: str
    status: str  # PENDING / COMPLETED / FAILED
    state_data: dict[str, Any]
    storage_path: str | None
    storage_size_bytes: int | None
    create_time: dt.datetime
    complete_time: dt.datetime | None
    is_savepoint: bool
    savepoint_name: str | None


class CheckpointRepository(Protocol):
    def begin(
        self,
        *,
        job_name: str,
        execution_id: str,
        checkpoint_id: int,
        checkpoint_type: str,
        savepoint_name: str | None,
    ) -> None: ...

    def complete(
        self,
        *,
        execution_id: str,
        checkpoint_id: int,
        state_data: dict[str, Any],
        storage_path: str,
        size: int,
    ) -> None: ...

    def fail(self, *, execution_id: str, checkpoint_id: int, reason: str) -> None: ...

    def latest_completed(self, job_name: str) -> CheckpointInfo | None: ...

    def savepoint(self, job_name: str, name: str) -> CheckpointInfo | None: ...

    def list(self, job_name: str) -> list[CheckpointInfo]: ...

    def delete(self, info: CheckpointInfo) -> None: ...

    def take_request(self, execution_id: str) -> str | None:
        """A manual checkpoint request for a running execution, consumed by reading it:
        ``"checkpoint"`` or ``"savepoint:NAME"``; None when there is none."""
        ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class InMemoryCheckpointRepository:
    """Checkpoint rows in a list: for runs without a metadata database."""

    def __init__(self) -> None:
        self.rows: list[CheckpointInfo] = []
        self.requests: dict[str, str] = {}

    def _find(self, execution_id: str, checkpoint_id: int) -> int:
        for i, row in enumerate(self.rows):
            if row.execution_id == execution_id and row.checkpoint_id == checkpoint_id:
                return i
        raise KeyError((execution_id, checkpoint_id))

    def begin(
        self,
        *,
        job_name: str,
        execution_id: str,
        checkpoint_id: int,
        checkpoint_type: str,
        savepoint_name: str | None,
    ) -> None:
        self.rows.append(
            CheckpointInfo(
                job_name=job_name,
                execution_id=execution_id,
                checkpoint_id=checkpoint_id,
                checkpoint_type=checkpoint_type,
                status="PENDING",
                state_data={},
                storage_path=None,
                storage_size_bytes=None,
                create_time=_now(),
                complete_time=None,
                is_savepoint=savepoint_name is not None,
                savepoint_name=savepoint_name,
            )
        )

    def complete(
        self,
        *,
        execution_id: str,
        checkpoint_id: int,
        state_data: dict[str, Any],
        storage_path: str,
        size: int,
    ) -> None:
        i = self._find(execution_id, checkpoint_id)
        self.rows[i] = attrs.evolve(
            self.rows[i],
            status="COMPLETED",
            state_data=state_data,
            storage_path=storage_path,
            storage_size_bytes=size,
            complete_time=_now(),
        )

    def fail(self, *, execution_id: str, checkpoint_id: int, reason: str) -> None:
        i = self._find(execution_id, checkpoint_id)
        self.rows[i] = attrs.evolve(self.rows[i], status="FAILED", complete_time=_now())

    def latest_completed(self, job_name: str) -> CheckpointInfo | None:
        done = [r for r in self.rows if r.job_name == job_name and r.status == "COMPLETED"]
        return done[-1] if done else None

    def savepoint(self, job_name: str, name: str) -> CheckpointInfo | None:
        found = [r for r in self.rows if r.job_name == job_name and r.savepoint_name == name]
        return found[-1] if found else None

    def list(self, job_name: str) -> list[CheckpointInfo]:
        return [r for r in reversed(self.rows) if r.job_name == job_name]

    def delete(self, info: CheckpointInfo) -> None:
        self.rows.remove(self.rows[self._find(info.execution_id, info.checkpoint_id)])

    def take_request(self, execution_id: str) -> str | None:
        return self.requests.pop(execution_id, None)
