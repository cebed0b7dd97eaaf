"""JobExecutor: runs executions in this process, with retries, control and heartbeats.

Every execution runs as its own asyncio task (the original design's "one thread pool per
job"): a failing or slow job never holds up another — a slow sink only awaits. Database
writes go through one writer thread, in order, so the event loop never waits on them.

An execution belongs to one runner instance (``owner_instance``) while it runs; the
heartbeat loop refreshes ``heartbeat_time`` of every execution this instance owns and
picks up control requests (cancel/pause/resume) that other processes left in the
database. When this instance's lease is gone (another instance took the execution over),
the local run is stopped so that it never writes next to its successor.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.errors import ExecutionNotFound, LifecycleError, PipelineError
from pipeline_core.model.job import JobType, PipelineJob
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.control import ExecutionControl
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.prepare import prepare
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.runtime.retry import backoff_seconds, is_retriable
from pipeline_core.runtime.runner import Checkpointing, execute
from pipeline_core.store import MetadataStore
from pipeline_core.store.executions import ExecutionRecord, LostOwnership, instance_name
from pipeline_core.store.recorder import ExecutionRecorder

__all__ = ["ExecutionHandle", "JobExecutor"]

log = logging.getLogger("pipeline_core.executor")


@attrs.define(eq=False)
class ExecutionHandle:
    """One execution running in this process."""

    execution_id: str
    job_name: str
    task: asyncio.Task[JobResult | None] | None = None
    inner: asyncio.Task[JobResult] | None = None
    control: ExecutionControl | None = None
    metrics: RunMetrics = attrs.field(factory=RunMetrics)
    retry_count: int = 0
    cancel_requested: bool = False
    stop_requested: bool = False
    lost: bool = False
    result: JobResult | None = None

    @property
    def paused(self) -> bool:
        return self.control is not None and self.control.paused


class JobExecutor:
    """The original design's JobExecutor (``submit``, ``cancel``, ``get_status``, ``pause``,
    ``resume``) for one runner instance."""

    def __init__(
        self,
        store: MetadataStore,
        plugins: Plugins,
        *,
        instance: str | None = None,
        checkpoint_url: str | None = None,
        max_concurrent: int = 32,
        heartbeat_interval: float = 2.0,
        lease: dt.timedelta = dt.timedelta(seconds=15),
        poll_interval: float = 0.5,
        base_dir: str | None = None,
    ) -> None:
        self.store = store
        #: relative paths and module:function references of stored jobs resolve from here
        self.base_dir = base_dir
        self.plugins = plugins
        self.instance = instance or instance_name()
        self.storage = CheckpointStorage(checkpoint_url)
        self.max_concurrent = max_concurrent
        self.heartbeat_interval = heartbeat_interval
        self.lease = lease
        self.poll_interval = poll_interval
        self.running: dict[str, ExecutionHandle] = {}
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="pipeline-db")
        self._loops: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False

    # --- database writes, in order, off the event loop --------------------------------

    def _submit_write(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            try:
                return fn(*args, **kwargs)
            except LostOwnership as exc:
                log.warning("%s", exc)
            except Exception:
                log.exception("recording %s failed", getattr(fn, "__name__", fn))
            return None

        return self._writer.submit(call)

    async def _write(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a database call on the writer thread (after every queued write); raises."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, lambda: fn(*args, **kwargs))

    # --- lifecycle of the executor ----------------------------------------------------

    async def start(self, *, claim: bool = True) -> None:
        """Start heartbeats (and, with ``claim``, claiming SCHEDULED executions and taking
        over executions whose owner's lease expired)."""
        self._loops.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))
        if claim:
            self._loops.append(asyncio.create_task(self._claim_loop(), name="claim"))

    def poke(self) -> None:
        """Look for SCHEDULED executions now (after a trigger fired in this process)."""
        self._wake.set()

    async def stop(self, *, graceful: bool = True, grace: float = 60.0) -> None:
        """Stop every execution here. ``graceful``: each takes a checkpoint and is handed
        back (SCHEDULED, no owner) so that another instance — or this one after a restart
        — resumes it there; otherwise they are simply cancelled and released."""
        self._stopping = True
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        handles = list(self.running.values())
        for h in handles:
            h.stop_requested = True
            if h.control is not None and h.control.stop_at_checkpoint():
                continue
            if h.inner is not None:
                h.inner.cancel()
            elif h.task is not None:
                h.task.cancel()
        tasks = [h.task for h in handles if h.task is not None]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace if graceful else 5)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._writer.shutdown(wait=True)

    # --- the original interface --------------------------------------------------------

    async def submit(self, job_name: str, execution_id: str | None = None) -> str:
        """Run an execution of ``job_name`` here now: the given SCHEDULED execution (it is
        claimed by this instance) or a new MANUAL one. Returns the execution id."""
        eid = execution_id or uuid.uuid4().hex
        try:
            record = await asyncio.to_thread(self.store.executions.get, eid)
        except ExecutionNotFound:
            record = await asyncio.to_thread(
                self.store.executions.create, job_name, eid, owner_instance=self.instance
            )
        else:
            if record.owner_instance not in (None, self.instance):
                raise LifecycleError(f"execution {eid!r} is owned by {record.owner_instance}")
            claimed = await asyncio.to_thread(self._claim_one, eid)
            if claimed is None:
                raise LifecycleError(f"execution {eid!r} is {record.status}, not SCHEDULED")
            record = claimed
        self._start(record)
        return eid

    def _claim_one(self, eid: str) -> ExecutionRecord | None:
        from sqlalchemy import update
        from sqlalchemy.orm import Session

        from pipeline_core.store import models as m

        with Session(self.store.engine) as session, session.begin():
            done = session.execute(
                update(m.Execution)
                .where(
                    m.Execution.execution_id == eid,
                    m.Execution.status == ExecutionStatus.SCHEDULED.value,
                    (m.Execution.owner_instance.is_(None))
                    | (m.Execution.owner_instance == self.instance),
                )
                .values(owner_instance=self.instance, heartbeat_time=m.utcnow())
            )
        return self.store.executions.get(eid) if done.rowcount else None  # type: ignore[attr-defined]

    async def cancel(self, execution_id: str) -> ExecutionStatus:
        """Cancel an execution wherever it runs; returns the status it had."""
        h = self.running.get(execution_id)
        if h is not None:
            h.cancel_requested = True
            if h.inner is not None:
                h.inner.cancel()
            elif h.task is not None:
                h.task.cancel()
            return ExecutionStatus.RUNNING
        ex = self.store.executions
        if await asyncio.to_thread(ex.cancel_unowned, execution_id, "cancelled before it started"):
            return ExecutionStatus.SCHEDULED
        record = await asyncio.to_thread(ex.request_control, execution_id, "cancel")
        return record.status

    async def pause(self, execution_id: str) -> None:
        await self._pause_resume(execution_id, pause=True)

    async def resume(self, execution_id: str) -> None:
        await self._pause_resume(execution_id, pause=False)

    async def _pause_resume(self, execution_id: str, *, pause: bool) -> None:
        h = self.running.get(execution_id)
        if h is None:
            await asyncio.to_thread(
                self.store.executions.request_control, execution_id, "pause" if pause else "resume"
            )
            return
        if h.control is None:
            raise LifecycleError(f"execution {execution_id!r} is not running yet")
        if pause:
            h.control.pause()
        else:
            h.control.resume()
        await self._write(self.store.executions.set_paused, execution_id, pause, self.instance)

    async def checkpoint(self, execution_id: str, savepoint: str | None = None) -> None:
        h = self.running.get(execution_id)
        if h is not None and h.control is not None and h.control.checkpoint(savepoint):
            return
        await asyncio.to_thread(self.store.checkpoints.request, execution_id, savepoint)

    def get_status(self, execution_id: str) -> ExecutionStatus:
        return self.store.executions.get(execution_id).status

    async def wait(self, execution_id: str) -> JobResult | None:
        """Until the local execution ends (all its retries included)."""
        h = self.running.get(execution_id)
        if h is None or h.task is None:
            return None
        return await asyncio.shield(h.task)

    # --- running -------------------------------------------------------------------------

    def _start(
        self,
        record: ExecutionRecord,
        *,
        job: PipelineJob | None = None,
        restore_from: CheckpointInfo | None = None,
        metrics: RunMetrics | None = None,
    ) -> ExecutionHandle:
        h = ExecutionHandle(record.execution_id, record.job_name, retry_count=record.retry_count)
        if metrics is not None:
            h.metrics = metrics
        self.running[record.execution_id] = h
        h.task = asyncio.create_task(
            self._supervise(h, record, job, restore_from),
            name=f"execution:{record.job_name}:{record.execution_id}",
        )
        return h

    async def run_here(
        self,
        record: ExecutionRecord,
        job: PipelineJob,
        *,
        restore_from: CheckpointInfo | None = None,
        metrics: RunMetrics | None = None,
    ) -> JobResult | None:
        """Run an execution this process created and owns, with ``job`` as given (which
        may hold Python functions), to its end. Used by ``pipeline-run run``."""
        h = self._start(record, job=job, restore_from=restore_from, metrics=metrics)
        assert h.task is not None
        return await h.task

    def _restore_point(self, job: PipelineJob, eid: str) -> CheckpointInfo | None:
        """A retried or taken-over execution resumes from its own newest checkpoint; a new
        STREAMING execution continues from the job's newest one (its offsets)."""
        cps = self.store.checkpoints
        own = cps.latest_completed_of_execution(eid)
        if own is not None or job.type is not JobType.STREAMING:
            return own
        return cps.latest_completed(job.name)

    async def _supervise(
        self,
        h: ExecutionHandle,
        record: ExecutionRecord,
        job: PipelineJob | None,
        restore_from: CheckpointInfo | None,
    ) -> JobResult | None:
        eid, ex = h.execution_id, self.store.executions
        try:
            if job is None:
                definition = await asyncio.to_thread(
                    self.store.registry.get, record.job_name, record.job_version
                )
                job = definition.to_job(self.base_dir)
            while True:
                result = await self._attempt(h, job, restore_from)
                restore_from = None
                if result is None:
                    return None
                h.result = result
                if result.status is not ExecutionStatus.FAILED:
                    return result
                cfg = job.config
                if (
                    h.lost
                    or h.stop_requested
                    or not (is_retriable(result.exception) and h.retry_count < cfg.max_retry_times)
                ):
                    return result
                h.retry_count += 1
                delay = backoff_seconds(cfg, h.retry_count)
                await self._write(
                    ex.transition,
                    eid,
                    ExecutionStatus.SCHEDULED,
                    message=(
                        f"retry {h.retry_count} of {cfg.max_retry_times} in {delay:.1f} s, "
                        "from the last checkpoint"
                    ),
                    owner=self.instance,
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
            if not h.stop_requested:  # cancelled while waiting for a retry
                with contextlib.suppress(Exception):
                    await self._write(
                        ex.finish,
                        eid,
                        ExecutionStatus.CANCELLED,
                        message="cancelled",
                        owner=self.instance,
                    )
            else:
                with contextlib.suppress(Exception):
                    await self._write(ex.release, eid, f"instance {self.instance} stopped")
            return None
        except LostOwnership as exc:
            log.warning("%s; stopping the local run", exc)
            return None
        except Exception as exc:
            log.exception("execution %s of job %s could not be run", eid, h.job_name)
            with contextlib.suppress(Exception):
                await self._write(
                    ex.finish,
                    eid,
                    ExecutionStatus.FAILED,
                    message=f"{exc}",
                    owner=self.instance,
                    error_message=str(exc),
                )
            return None
        finally:
            self.running.pop(eid, None)
            self.poke()

    async def _attempt(
        self, h: ExecutionHandle, job: PipelineJob, restore_from: CheckpointInfo | None
    ) -> JobResult | None:
        """One run of the execution, from INITIALIZING to a recorded end."""
        eid, ex, me = h.execution_id, self.store.executions, self.instance
        await self._write(ex.transition, eid, ExecutionStatus.INITIALIZING, owner=me)
        try:
            prepared = prepare(job, self.plugins)
        except PipelineError as exc:
            await self._write(
                ex.transition,
                eid,
                ExecutionStatus.FAILED,
                message=str(exc),
                owner=me,
                error_message=str(exc),
            )
            return JobResult(
                job_name=job.name,
                execution_id=eid,
                status=ExecutionStatus.FAILED,
                records_read=0,
                records_written=0,
                failed_records=0,
                dropped_records=0,
                duration_s=0.0,
                error=str(exc),
                exception=exc,
            )
        if restore_from is None:
            restore_from = await asyncio.to_thread(self._restore_point, job, eid)
        first_id = await asyncio.to_thread(self.store.checkpoints.next_checkpoint_id, eid)
        history = await asyncio.to_thread(ex.transitions, eid)
        first_attempt = sum(t.to_status == ExecutionStatus.INITIALIZING for t in history) == 1
        # the first attempt writes under the execution id (part files are named after it);
        # any later attempt, here or on another instance, under a fresh id
        run_id = eid if first_attempt else uuid.uuid4().hex
        h.control = ExecutionControl()
        if h.retry_count or h.metrics.records_read:
            h.metrics = RunMetrics()
        recorder = ExecutionRecorder(ex, eid, record_end=False, submit=self._submit_write, owner=me)
        name = f"execution-recorder:{eid}"
        self.plugins.pm.register(recorder, name=name)
        try:
            h.inner = asyncio.create_task(
                execute(
                    prepared,
                    self.plugins,
                    execution_id=eid,
                    run_id=run_id,
                    metrics=h.metrics,
                    checkpointing=Checkpointing(
                        repository=self.store.checkpoints,
                        storage=self.storage,
                        restore_from=restore_from,
                        first_checkpoint_id=first_id,
                    ),
                    control=h.control,
                )
            )
            try:
                result = await h.inner
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise  # the supervisor itself is being cancelled
                result = None
        finally:
            self.plugins.pm.unregister(name=name)
            h.inner = None
        if h.lost:
            return None
        if result is None:  # the run was cancelled
            if h.stop_requested:
                await self._write(ex.release, eid, f"instance {me} stopped", owner=me)
            else:
                await self._write(
                    ex.finish,
                    eid,
                    ExecutionStatus.CANCELLED,
                    message="cancelled",
                    owner=me,
                    **_counts(h.metrics),
                )
            return None
        if result.stopped_at_checkpoint:
            last = result.checkpoints[-1] if result.checkpoints else None
            await self._write(
                ex.release, eid, f"instance {me} stopped at checkpoint {last}", owner=me
            )
            return result
        await self._write(
            ex.finish, eid, result.status, message=result.error, result=result, owner=me
        )
        return result

    # --- background loops ------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._beat()
            except Exception:
                log.exception("heartbeat failed")
            await asyncio.sleep(self.heartbeat_interval)

    async def _beat(self) -> None:
        await self._write(self.store.instances.beat, self.instance)
        if not self.running:
            return
        progress = {
            eid: (h.metrics.records_read, h.metrics.failed_records)
            for eid, h in self.running.items()
        }
        owned, requests = await self._write(self.store.executions.beat, self.instance, progress)
        for eid in progress.keys() - owned:
            h = self.running.get(eid)
            if h is not None and not h.lost:
                log.warning("execution %s was taken over by another instance; stopping here", eid)
                h.lost = True
                if h.inner is not None:
                    h.inner.cancel()
                elif h.task is not None:
                    h.task.cancel()
        for eid, action in requests.items():
            try:
                if action == "cancel":
                    await self.cancel(eid)
                elif action in ("pause", "resume"):
                    await self._pause_resume(eid, pause=action == "pause")
            except PipelineError as exc:
                log.warning("control request %s for %s: %s", action, eid, exc)

    async def _claim_loop(self) -> None:
        while True:
            try:
                if not self._stopping:
                    await self._claim()
                    await self._take_over()
            except Exception:
                log.exception("claiming executions failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    async def _claim(self) -> None:
        free = self.max_concurrent - len(self.running)
        if free <= 0:
            return
        for record in await asyncio.to_thread(self.store.executions.claim, self.instance, free):
            log.info("running %s execution %s", record.job_name, record.execution_id)
            self._start(record)

    async def _take_over(self) -> None:
        ex = self.store.executions
        for eid, owner in await asyncio.to_thread(ex.expired, self.lease):
            if eid in self.running:
                continue  # ours: the heartbeat is merely late
            if await asyncio.to_thread(ex.take_over, eid, owner, self.lease):
                log.warning("took over execution %s from %s (lease expired)", eid, owner)
                self.poke()


def _counts(metrics: RunMetrics) -> dict[str, Any]:
    return {"processed_records": metrics.records_read, "failed_records": metrics.failed_records}
