"""A plugin that records one execution's lifecycle in the metadata database.

It listens to the runtime's notification hooks, so the runtime itself stays unaware of
the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline_core.hookspecs import hookimpl
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.store.executions import ExecutionStore

__all__ = ["ExecutionRecorder"]


class ExecutionRecorder:
    """Writes RUNNING when the job starts, CHECKPOINTING ⇄ RUNNING around checkpoints and
    (with ``record_end``) the final status.

    ``submit(fn, *args, **kwargs)`` runs the database write; by default at once, in the
    service a single writer thread, so that the event loop never waits on the database and
    writes stay in order. ``owner``: refuse writes once another instance took over.
    """

    def __init__(
        self,
        executions: ExecutionStore,
        execution_id: str,
        *,
        record_end: bool = True,
        submit: Callable[..., Any] | None = None,
        owner: str | None = None,
    ) -> None:
        self.executions = executions
        self.execution_id = execution_id
        self.record_end = record_end
        self.submit = submit or (lambda fn, *a, **kw: fn(*a, **kw))
        self.owner = owner

    def _transition(self, status: ExecutionStatus, **kwargs: Any) -> None:
        self.submit(
            self.executions.transition, self.execution_id, status, owner=self.owner, **kwargs
        )

    @hookimpl
    def pipeline_job_started(self, job: Any, execution_id: str) -> None:
        if execution_id == self.execution_id:
            self._transition(ExecutionStatus.RUNNING)

    @hookimpl
    def pipeline_checkpoint_started(self, job: Any, execution_id: str, checkpoint_id: int) -> None:
        if execution_id == self.execution_id:
            self._transition(ExecutionStatus.CHECKPOINTING, message=f"checkpoint {checkpoint_id}")

    @hookimpl
    def pipeline_checkpoint_completed(
        self, job: Any, execution_id: str, checkpoint_id: int, state: dict[str, Any]
    ) -> None:
        if execution_id == self.execution_id:
            self._transition(ExecutionStatus.RUNNING)

    @hookimpl
    def pipeline_job_finished(self, job: Any, execution_id: str, result: JobResult) -> None:
        if execution_id == self.execution_id and self.record_end:
            self.submit(self.executions.finish, execution_id, result.status, result=result)

    @hookimpl
    def pipeline_job_failed(
        self, job: Any, execution_id: str, error: BaseException, result: JobResult
    ) -> None:
        if execution_id == self.execution_id and self.record_end:
            self.submit(
                self.executions.finish,
                execution_id,
                ExecutionStatus.FAILED,
                message=result.error,
                result=result,
            )
