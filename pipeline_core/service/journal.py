"""The journal: the one writer of an owner's execution rows, in order, off the event loop.

An owner (a ``serve`` instance or a foreground ``pipeline-run run``) has one journal. Every
row of the executions it owns — claim, attempts, transitions, checkpoint rows, counts,
heartbeats, finish, release — is written by the journal's single thread, in the order
the calls were made, so a transition never overtakes the checkpoint row before it and
the event loop never waits on the database. Writes that change an execution carry the
owner and are refused (:class:`LostOwnership`) once another owner holds it.

:class:`ExecutionJournal` is the owner's :class:`~pipeline_core.runtime.listener.RunListener`
for one execution (whether the execution runs in this process or in a worker process)
and :class:`FencedCheckpoints` its checkpoint repository: a checkpoint is COMPLETED only
while this owner still holds the execution, so a run that lost its lease never commits.
The execution's log lines come to it in batches (:mod:`pipeline_core.service.logs`) and
are written by the same thread, in order with the rest of its rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.runtime.listener import notify_plugins
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.store.executions import LostOwnership

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline_core.model.job import PipelineJob
    from pipeline_core.plugins.manager import Plugins
    from pipeline_core.service.logs import LogLine
    from pipeline_core.store import MetadataStore

__all__ = ["ExecutionJournal", "FencedCheckpoints", "Journal"]

log = logging.getLogger("pipeline_core.executor")

T = TypeVar("T")


class Journal:
    """One writer thread for the rows of one owner."""

    def __init__(self, store: MetadataStore, owner: str) -> None:
        self.store = store
        self.owner = owner
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="pipeline-journal")

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue a write; its failure is logged (a lost ownership as a warning)."""

        def call() -> Any:
            try:
                return fn(*args, **kwargs)
            except LostOwnership as exc:
                log.warning("%s", exc)
            except Exception:
                log.exception("recording %s failed", getattr(fn, "__name__", fn))
            return None

        return self._pool.submit(call)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a database call after every queued write and return its result (raises)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def call_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same from a thread that may block (never from the event loop)."""
        return self._pool.submit(fn, *args, **kwargs).result()

    def log_lines(
        self, execution_id: str, lines: Sequence[LogLine], *, keep: int, attempt: int
    ) -> None:
        """Queue one write of a batch of an execution's log lines (never waits)."""
        if lines and keep > 0:
            self.submit(
                self.store.logs.append,
                execution_id,
                list(lines),
                keep=keep,
                attempt=attempt,
                owner=self.owner,
            )

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class FencedCheckpoints:
    """The checkpoint repository of one execution as its owner sees it: every write goes
    through the journal; COMPLETED only while the owner still holds the execution."""

    def __init__(self, journal: Journal, execution_id: str) -> None:
        self.journal = journal
        self.repo = journal.store.checkpoints
        self.execution_id = execution_id

    def begin(self, **kwargs: Any) -> None:
        self.journal.call_blocking(self.repo.begin, **kwargs)

    def complete(self, **kwargs: Any) -> None:
        self.journal.call_blocking(self.repo.complete, owner=self.journal.owner, **kwargs)

    def fail(self, **kwargs: Any) -> None:
        self.journal.call_blocking(self.repo.fail, **kwargs)

    def delete(self, info: CheckpointInfo) -> None:
        self.journal.call_blocking(self.repo.delete, info)

    def latest_completed(self, job_name: str) -> CheckpointInfo | None:
        return self.repo.latest_completed(job_name)

    def savepoint(self, job_name: str, name: str) -> CheckpointInfo | None:
        return self.repo.savepoint(job_name, name)

    def list(self, job_name: str) -> list[CheckpointInfo]:
        return self.repo.list(job_name)

    def take_request(self, execution_id: str) -> str | None:
        return self.journal.call_blocking(self.repo.take_request, execution_id)


class ExecutionJournal:
    """The owner's listener for one execution: writes RUNNING / CHECKPOINTING ⇄ RUNNING
    (through the journal, in order), then tells the plugins. Called on the event loop of
    a local run, or on the reader thread of a worker process: it never blocks."""

    def __init__(
        self,
        journal: Journal,
        plugins: Plugins,
        job: PipelineJob,
        execution_id: str,
        *,
        keep_lines: int = 500,
    ) -> None:
        self.journal = journal
        self.plugins = plugins
        self.job = job
        self.execution_id = execution_id
        #: log lines kept per execution (the newest)
        self.keep_lines = keep_lines
        #: the attempt whose lines arrive now (the attempt loop sets it)
        self.attempt = 0

    def log_lines(self, lines: Sequence[LogLine]) -> None:
        """A batch of the execution's log lines (from its worker): one write, queued
        behind the rows before it (never waits)."""
        self.journal.log_lines(self.execution_id, lines, keep=self.keep_lines, attempt=self.attempt)

    def _transition(self, status: ExecutionStatus, **kwargs: Any) -> None:
        ex = self.journal.store.executions
        self.journal.submit(
            ex.transition, self.execution_id, status, owner=self.journal.owner, **kwargs
        )

    def _notify(self, hook: str, **kwargs: Any) -> None:
        notify_plugins(self.plugins, hook, job=self.job, execution_id=self.execution_id, **kwargs)

    def job_started(self) -> None:
        self._transition(ExecutionStatus.RUNNING)
        self._notify("pipeline_job_started")

    def checkpoint_started(self, checkpoint_id: int) -> None:
        self._transition(ExecutionStatus.CHECKPOINTING, message=f"checkpoint {checkpoint_id}")
        self._notify("pipeline_checkpoint_started", checkpoint_id=checkpoint_id)

    def checkpoint_completed(self, checkpoint_id: int, state: dict[str, Any]) -> None:
        self._transition(ExecutionStatus.RUNNING)
        self._notify("pipeline_checkpoint_completed", checkpoint_id=checkpoint_id, state=state)

    def checkpoint_failed(self, checkpoint_id: int, error: BaseException) -> None:
        self._notify("pipeline_checkpoint_failed", checkpoint_id=checkpoint_id, error=error)

    def job_ended(self, result: JobResult) -> None:
        """An attempt ended; the execution may still be retried, so plugins hear of its
        end from :meth:`execution_ended`, once."""

    def execution_ended(self, result: JobResult) -> None:
        """The execution is over (no retry follows): ``result`` holds its totals."""
        if result.status is ExecutionStatus.FAILED and result.exception is not None:
            self._notify("pipeline_job_failed", error=result.exception, result=result)
        else:
            self._notify("pipeline_job_finished", result=result)
