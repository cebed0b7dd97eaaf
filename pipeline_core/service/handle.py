"""ExecutionHandle: one execution owned by this process, and how to steer its attempt.

The attempt runs either here (an asyncio task: foreground ``pipeline-run run``) or in a
worker process (``serve``); the handle hides which. Control is asynchronous: the methods
ask, the attempt loop records what happened.
"""

from __future__ import annotations

import asyncio

import attrs

from pipeline_core.runtime.control import ExecutionControl
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.result import JobResult
from pipeline_core.service.worker import WorkerProcess

__all__ = ["ExecutionHandle"]


@attrs.define(eq=False)
class ExecutionHandle:
    """One execution this process owns (all its attempts)."""

    execution_id: str
    job_name: str
    #: the supervisor task: every attempt and retry of the execution
    task: asyncio.Task[JobResult | None] | None = None
    metrics: RunMetrics = attrs.field(factory=RunMetrics)
    retry_count: int = 0
    #: the current attempt's number (pipeline_job_execution_attempt.attempt)
    attempt: int = 0
    #: cancel: end CANCELLED; stop: hand the execution back (SCHEDULED, unowned)
    cancel_requested: bool = False
    stop_requested: bool = False
    #: another owner holds the execution now: write nothing more
    lost: bool = False
    paused: bool = False
    result: JobResult | None = None
    #: the current attempt, when it runs here
    local: asyncio.Task[JobResult] | None = None
    control: ExecutionControl | None = None
    #: the current attempt, when it runs in a worker process
    worker: WorkerProcess | None = None

    @property
    def running(self) -> bool:
        return self.local is not None or self.worker is not None

    def pause(self) -> None:
        self.paused = True
        if self.control is not None:
            self.control.pause()
        elif self.worker is not None:
            self.worker.control("pause")

    def resume(self) -> None:
        self.paused = False
        if self.control is not None:
            self.control.resume()
        elif self.worker is not None:
            self.worker.control("resume")

    def checkpoint(self, savepoint: str | None = None) -> bool:
        """Ask the running attempt for a checkpoint; False if there is none to ask."""
        if self.control is not None:
            return self.control.checkpoint(savepoint)
        if self.worker is not None:
            self.worker.control("checkpoint", savepoint)
            return True
        return False

    def stop_at_checkpoint(self) -> None:
        """Take a checkpoint, then end the attempt (a run without checkpoints is aborted:
        it commits nothing)."""
        if self.control is not None:
            if not self.control.stop_at_checkpoint():
                self.abort()
        elif self.worker is not None:
            self.worker.control("stop")
        elif self.task is not None:
            self.task.cancel()  # between attempts (waiting for a retry)

    def abort(self) -> None:
        """End the attempt now, committing nothing more."""
        if self.local is not None:
            self.local.cancel()
        elif self.worker is not None:
            self.worker.control("cancel")
        elif self.task is not None:
            self.task.cancel()

    def kill(self) -> None:
        """The attempt must stop at once (its lease is gone): SIGKILL a worker."""
        if self.worker is not None:
            self.worker.kill()
        elif self.local is not None:
            self.local.cancel()
        elif self.task is not None:
            self.task.cancel()
