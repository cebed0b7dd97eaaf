"""Attempts and retries of one execution, run here or in a worker process.

:class:`AttemptLoop` drives an execution its owner holds: each attempt goes INITIALIZING →
RUNNING ⇄ CHECKPOINTING → an end, is recorded in ``pipeline_job_execution_attempt``
under a run id of its own, and resumes from the execution's newest checkpoint (or, before
it has one, from the checkpoint the execution continues). A retriable failure is retried
per the job's policy (FAILED → SCHEDULED on the same execution). Every row goes through
the owner's :class:`~pipeline_core.service.journal.Journal`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import attrs

from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.errors import PipelineError
from pipeline_core.model.job import JobType, PipelineJob
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.control import ExecutionControl
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.prepare import PreparedJob, prepare
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.runtime.retry import backoff_seconds, is_retriable
from pipeline_core.runtime.runner import Checkpointing, execute
from pipeline_core.service.handle import ExecutionHandle
from pipeline_core.service.journal import ExecutionJournal, FencedCheckpoints, Journal
from pipeline_core.service.logs import (
    LogBuffer,
    LogSettings,
    LogShipper,
    capture_here,
    let_through,
)
from pipeline_core.service.worker import WorkerProcess, WorkerSpec
from pipeline_core.store.executions import ExecutionRecord, LostOwnership

__all__ = ["AttemptLoop"]

log = logging.getLogger("pipeline_core.executor")

S = ExecutionStatus


class AttemptLoop:
    """Runs executions to their end for one owner."""

    def __init__(
        self,
        journal: Journal,
        plugins: Plugins,
        storage: CheckpointStorage,
        *,
        checkpoint_url: str | None,
        base_dir: str | None,
        workers: bool,
        on_done: Callable[[ExecutionHandle], None],
        logs: LogSettings | None = None,
    ) -> None:
        self.journal = journal
        self.store = journal.store
        self.owner = journal.owner
        self.plugins = plugins
        self.storage = storage
        self.checkpoint_url = checkpoint_url
        self.base_dir = base_dir
        #: run attempts in worker processes (serve) or in this process (foreground run)
        self.workers = workers
        self.on_done = on_done
        #: which log lines of an execution are kept (service/logs.py)
        self.logs = logs if logs is not None else LogSettings.from_env()

    # --- the execution ---------------------------------------------------------------

    async def supervise(
        self,
        h: ExecutionHandle,
        record: ExecutionRecord,
        job: PipelineJob | None,
        restore_from: CheckpointInfo | None,
        prepared: PreparedJob | None = None,
    ) -> JobResult | None:
        """Run the execution to its end. ``job`` (with ``prepared``, when the caller
        validated it already): run it in this process as given; None: load the
        definition of ``record`` from the registry and run it in worker processes.

        The log records made here for the execution (an attempt run in this process, and
        what this owner logs about it: retries, workers) are kept as its log lines; a
        worker sends its own."""
        if not self.logs.enabled:
            return await self._supervise(h, record, job, restore_from, prepared)
        buffer = LogBuffer(self.logs)
        shipper = LogShipper(
            buffer,
            lambda lines: self.journal.log_lines(
                h.execution_id, lines, keep=self.logs.lines, attempt=h.attempt
            ),
        )
        with capture_here(buffer):
            shipper.start()
            try:
                return await self._supervise(h, record, job, restore_from, prepared)
            finally:
                await shipper.close()

    async def _supervise(
        self,
        h: ExecutionHandle,
        record: ExecutionRecord,
        job: PipelineJob | None,
        restore_from: CheckpointInfo | None,
        prepared: PreparedJob | None,
    ) -> JobResult | None:
        eid, ex, j = h.execution_id, self.store.executions, self.journal
        listener: ExecutionJournal | None = None
        try:
            dag: dict[str, Any] | None = None
            if job is None:
                definition = await asyncio.to_thread(
                    self.store.registry.get, record.job_name, record.job_version
                )
                job = definition.to_job(self.base_dir)
                dag = definition.effective_dag()
            listener = ExecutionJournal(j, self.plugins, job, eid, keep_lines=self.logs.lines)
            origin = restore_from
            while True:
                result = await self._attempt(
                    h, job, dag, listener, restore_from, record, origin, prepared
                )
                restore_from = None
                if result is None:
                    return None
                h.result = result
                cfg = job.config
                if (
                    result.status is not S.FAILED
                    or h.lost
                    or h.stop_requested
                    or h.cancel_requested
                    or not (is_retriable(result.exception) and h.retry_count < cfg.max_retry_times)
                ):
                    listener.execution_ended(self._totals(result, h.metrics))
                    return result
                h.retry_count += 1
                delay = backoff_seconds(cfg, h.retry_count)
                await j.call(
                    ex.transition,
                    eid,
                    S.SCHEDULED,
                    message=(
                        f"retry {h.retry_count} of {cfg.max_retry_times} in {delay:.1f} s, "
                        "from the last checkpoint"
                    ),
                    owner=self.owner,
                    retry_count=h.retry_count,
                )
                log.warning(
                    "job %s execution %s failed: %s; retry %d of %d in %.1f s, "
                    "from the last checkpoint",
                    h.job_name,
                    eid,
                    result.error,
                    h.retry_count,
                    cfg.max_retry_times,
                    delay,
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                if h.stop_requested and not h.cancel_requested:
                    await j.call(
                        self.store.ownership.release, eid, f"{self.owner} stopped", owner=self.owner
                    )
                elif not h.lost:  # cancelled while waiting for a retry
                    await j.call(ex.finish, eid, S.CANCELLED, message="cancelled", owner=self.owner)
            return None
        except LostOwnership as exc:
            log.warning("%s; stopping the local run", exc)
            return None
        except Exception as exc:
            log.exception("execution %s of job %s could not be run", eid, h.job_name)
            with contextlib.suppress(Exception):
                await j.call(
                    ex.finish,
                    eid,
                    S.FAILED,
                    message=f"{exc}",
                    owner=self.owner,
                    error_message=str(exc),
                )
            return None
        finally:
            self.on_done(h)

    @staticmethod
    def _totals(result: JobResult, metrics: RunMetrics) -> JobResult:
        """The execution's result over all its attempts (for plugins and metrics)."""
        before = metrics.before
        return attrs.evolve(
            result,
            records_read=before.get("records_read", 0) + result.records_read,
            records_written=before.get("records_written", 0) + result.records_written,
            failed_records=before.get("failed_records", 0) + result.failed_records,
            dropped_records=before.get("dropped_records", 0) + result.dropped_records,
        )

    def _restore_point(
        self, job: PipelineJob, record: ExecutionRecord, origin: CheckpointInfo | None
    ) -> tuple[CheckpointInfo | None, bool]:
        """Where an attempt resumes, and whether the framework chose it (rather than the
        user): the execution's own newest checkpoint; before it has one, the checkpoint
        it continues (``run --resume``, a savepoint); a new STREAMING execution, the
        job's newest one (its offsets) — chosen, so a changed source starts fresh."""
        cps = self.store.checkpoints
        own = cps.latest_completed_of_execution(record.execution_id)
        if own is not None:
            return own, False
        if origin is not None:
            return origin, False
        if record.resumed_from is not None:
            found = cps.get(*record.resumed_from)
            if found is not None and found.status == "COMPLETED":
                return found, False
        if job.type is JobType.STREAMING:
            return cps.latest_completed(job.name), True
        return None, False

    # --- one attempt -------------------------------------------------------------------

    async def _attempt(
        self,
        h: ExecutionHandle,
        job: PipelineJob,
        dag: dict[str, Any] | None,
        listener: ExecutionJournal,
        restore_from: CheckpointInfo | None,
        record: ExecutionRecord,
        origin: CheckpointInfo | None,
        prepared: PreparedJob | None,
    ) -> JobResult | None:
        eid, ex, j, me = h.execution_id, self.store.executions, self.journal, self.owner
        await j.call(ex.transition, eid, S.INITIALIZING, owner=me)
        chosen = False
        if restore_from is None:
            restore_from, chosen = await asyncio.to_thread(self._restore_point, job, record, origin)
        first_id = await asyncio.to_thread(self.store.checkpoints.next_checkpoint_id, eid)
        h.attempt, run_id = await j.call(self.store.ownership.start_attempt, eid, me)
        listener.attempt = h.attempt
        if h.metrics.records_read or h.metrics.before:
            h.metrics = RunMetrics()  # a retry counts afresh (the handle's stay untouched)
        if h.attempt > 1:
            log.info("execution %s: attempt %d (run %s)", eid, h.attempt, run_id)
        checkpoints = FencedCheckpoints(j, eid)
        if self.workers and dag is not None:
            result = await self._in_worker(
                h, job, dag, listener, checkpoints, run_id, restore_from, first_id, chosen
            )
        else:
            result = await self._here(
                h, job, prepared, listener, checkpoints, run_id, restore_from, first_id, chosen
            )
        return await self._record_end(h, result, listener)

    async def _here(
        self,
        h: ExecutionHandle,
        job: PipelineJob,
        prepared: PreparedJob | None,
        listener: ExecutionJournal,
        checkpoints: FencedCheckpoints,
        run_id: str,
        restore_from: CheckpointInfo | None,
        first_id: int,
        chosen: bool,
    ) -> JobResult | None:
        if prepared is None:  # prepared once: a Stream is a description, reusable
            try:
                prepared = prepare(job, self.plugins, resolve_secrets=True)
            except PipelineError as exc:
                return JobResult.not_started(job.name, h.execution_id, exc)
        h.control = ExecutionControl()
        if h.paused:
            h.control.pause()
        if self.logs.enabled:
            let_through(self.logs.level)  # the job's INFO lines, not only the console's
        h.local = asyncio.create_task(
            execute(
                prepared,
                self.plugins,
                execution_id=h.execution_id,
                run_id=run_id,
                metrics=h.metrics,
                checkpointing=Checkpointing(
                    repository=checkpoints,
                    storage=self.storage,
                    restore_from=restore_from,
                    first_checkpoint_id=first_id,
                    restore_chosen_by_framework=chosen,
                ),
                control=h.control,
                listener=listener,
            )
        )
        try:
            return await h.local
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise  # the supervisor itself is being cancelled
            return None
        finally:
            h.local = h.control = None

    async def _in_worker(
        self,
        h: ExecutionHandle,
        job: PipelineJob,
        dag: dict[str, Any],
        listener: ExecutionJournal,
        checkpoints: FencedCheckpoints,
        run_id: str,
        restore_from: CheckpointInfo | None,
        first_id: int,
        chosen: bool,
    ) -> JobResult | None:
        spec = WorkerSpec(
            execution_id=h.execution_id,
            run_id=run_id,
            job_name=job.name,
            dag=dag,
            base_dir=job.base_dir,  # the job file's folder, else serve's --jobs DIR
            restore_from=restore_from,
            first_checkpoint_id=first_id,
            restore_chosen_by_framework=chosen,
            checkpoint_url=self.checkpoint_url,
            extra_plugins=self.plugins.extra_modules,
            logs=self.logs,
        )
        worker = WorkerProcess(spec, listener=listener, checkpoints=checkpoints, metrics=h.metrics)
        await worker.start()
        h.worker = worker
        log.info(
            "execution %s attempt %d runs in worker process %s",
            h.execution_id,
            h.attempt,
            worker.pid,
        )
        if h.paused:
            worker.control("pause")
        try:
            return await worker.wait()
        except asyncio.CancelledError:
            worker.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.wait(), 10)
            raise
        finally:
            h.worker = None

    async def _record_end(
        self, h: ExecutionHandle, result: JobResult | None, listener: ExecutionJournal
    ) -> JobResult | None:
        """Write how the attempt ended; returns the result the supervisor acts on."""
        eid, ex, j, me = h.execution_id, self.store.executions, self.journal, self.owner
        own = self.store.ownership
        m = h.metrics
        counts = {"processed_records": m.total_read, "failed_records": m.total_failed}

        async def end_attempt(status: str, reason: str | None) -> None:
            await j.call(
                own.end_attempt,
                eid,
                h.attempt,
                status,
                reason,
                processed=m.records_read,
                failed=m.failed_records,
            )

        if h.lost:
            return None  # the new owner closed this attempt (LOST) already
        if result is None or result.stopped_at_checkpoint:
            last = result.checkpoints[-1] if result and result.checkpoints else None
            after = f" after checkpoint {last}" if last is not None else ""
            if h.stop_requested and not h.cancel_requested:
                await j.call(own.release, eid, f"{me} stopped{after}", owner=me)
                return result
            await end_attempt("CANCELLED", f"cancelled{after}")
            await j.call(
                ex.finish, eid, S.CANCELLED, message=f"cancelled{after}", owner=me, **counts
            )
            if result is None:
                listener.execution_ended(_cancelled(h))
                return None
            return attrs.evolve(result, status=S.CANCELLED)
        await end_attempt(result.status.value, result.error)
        await j.call(
            ex.finish, eid, result.status, message=result.error, result=result, owner=me, **counts
        )
        return result


def _cancelled(h: ExecutionHandle) -> JobResult:
    m = h.metrics
    return JobResult(
        job_name=h.job_name,
        execution_id=h.execution_id,
        status=S.CANCELLED,
        records_read=m.total_read,
        records_written=m.total_written,
        failed_records=m.total_failed,
        dropped_records=m.dropped_records,
        duration_s=m.elapsed,
    )
