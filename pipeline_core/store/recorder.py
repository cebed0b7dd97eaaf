"""A plugin that records one execution's lifecycle in the metadata database.

It listens to the runtime's notification hooks, so the runtime itself stays unaware of
the database.
"""

from __future__ import annotations

from typing import Any

from pipeline_core.hookspecs import hookimpl
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.store.executions import ExecutionStore

__all__ = ["ExecutionRecorder"]


class ExecutionRecorder:
    """Writes RUNNING when the job starts and its final status when it ends."""

    def __init__(self, executions: ExecutionStore, execution_id: str) -> None:
        self.executions = executions
        self.execution_id = execution_id

    @hookimpl
    def pipeline_job_started(self, job: Any, execution_id: str) -> None:
        if execution_id == self.execution_id:
            self.executions.transition(execution_id, ExecutionStatus.RUNNING)

    @hookimpl
    def pipeline_checkpoint_started(self, job: Any, execution_id: str, checkpoint_id: int) -> None:
        if execution_id == self.execution_id:
            self.executions.transition(
                execution_id, ExecutionStatus.CHECKPOINTING, message=f"checkpoint {checkpoint_id}"
            )

    @hookimpl
    def pipeline_checkpoint_completed(
        self, job: Any, execution_id: str, checkpoint_id: int, state: dict[str, Any]
    ) -> None:
        if execution_id == self.execution_id:
            self.executions.transition(execution_id, ExecutionStatus.RUNNING)

    @hookimpl
    def pipeline_job_finished(self, job: Any, execution_id: str, result: JobResult) -> None:
        if execution_id == self.execution_id:
            self.executions.transition(execution_id, result.status, result=result)

    @hookimpl
    def pipeline_job_failed(
        self, job: Any, execution_id: str, error: BaseException, result: JobResult
    ) -> None:
        if execution_id == self.execution_id:
            self.executions.transition(
                execution_id, ExecutionStatus.FAILED, message=result.error, result=result
            )
