"""JobExecutor: the executions one owner runs — the original design's executor interface.

The executor composes three parts, each in its own module:

- :class:`~pipeline_core.service.journal.Journal` — the one writer of the owner's rows;
- :class:`~pipeline_core.service.attempts.AttemptLoop` — attempts and retries of each
  execution, in worker processes (``serve``) or in this process (``pipeline-run run``);
- :class:`~pipeline_core.service.leases.LeaseKeeper` and
  :class:`~pipeline_core.service.leases.ClaimLoop` — heartbeats (on a thread), claiming
  SCHEDULED executions and taking over those whose owner died.

An execution whose lease this owner lost is stopped at once (its worker is SIGKILLed),
and a run that lost its lease can never complete a checkpoint (FencedCheckpoints), so it
never writes next to its successor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import uuid

from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.errors import ExecutionNotFound, LifecycleError, PipelineError
from pipeline_core.model.job import PipelineJob
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.prepare import PreparedJob
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.service.attempts import AttemptLoop
from pipeline_core.service.handle import ExecutionHandle
from pipeline_core.service.journal import Journal
from pipeline_core.service.leases import ClaimLoop, LeaseKeeper
from pipeline_core.service.logs import LogSettings
from pipeline_core.service.worker import warm_up
from pipeline_core.store import MetadataStore
from pipeline_core.store.executions import ExecutionRecord, instance_name

__all__ = ["ExecutionHandle", "JobExecutor", "default_slots"]

log = logging.getLogger("pipeline_core.executor")


def default_slots() -> int:
    """Executions run at once by default: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class JobExecutor:
    """``submit``, ``cancel``, ``get_status``, ``pause``, ``resume`` (the original
    interface) and ``checkpoint`` for one owner."""

    def __init__(
        self,
        store: MetadataStore,
        plugins: Plugins,
        *,
        instance: str | None = None,
        checkpoint_url: str | None = None,
        max_concurrent: int | None = None,
        heartbeat_interval: float = 2.0,
        lease: dt.timedelta = dt.timedelta(seconds=15),
        poll_interval: float = 0.5,
        base_dir: str | None = None,
        workers: bool = True,
        cancel_grace: float = 30.0,
        logs: LogSettings | None = None,
    ) -> None:
        self.store = store
        self.plugins = plugins
        self.instance = instance or instance_name()
        self.base_dir = base_dir
        self.max_concurrent = max_concurrent or default_slots()
        self.heartbeat_interval = heartbeat_interval
        self.lease = lease
        #: a cancelled execution checkpoints and stops; after this many seconds it is killed
        self.cancel_grace = cancel_grace
        self.running: dict[str, ExecutionHandle] = {}
        self.journal = Journal(store, self.instance)
        self.attempts = AttemptLoop(
            self.journal,
            plugins,
            CheckpointStorage(checkpoint_url),
            checkpoint_url=checkpoint_url,
            base_dir=base_dir,
            workers=workers,
            on_done=self._done,
            logs=logs,
        )
        self.claims = ClaimLoop(
            self.journal,
            lease=lease,
            poll_interval=poll_interval,
            free_slots=lambda: self.max_concurrent - len(self.running),
            start=self._start,
            is_running=lambda eid: eid in self.running,
        )
        self._leases: LeaseKeeper | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._requests: set[asyncio.Future[None]] = set()

    @property
    def poll_interval(self) -> float:
        return self.claims.poll_interval

    @poll_interval.setter
    def poll_interval(self, value: float) -> None:
        self.claims.poll_interval = value

    # --- lifecycle of the executor ----------------------------------------------------

    async def start(self, *, claim: bool = True) -> None:
        """Start heartbeats (and, with ``claim``, claiming SCHEDULED executions and taking
        over executions whose owner's lease expired)."""
        self._leases = LeaseKeeper(
            self.journal,
            self.running,
            interval=self.heartbeat_interval,
            loop=asyncio.get_running_loop(),
            on_lost=self._lost,
            on_request=self._request,
            beat_instance=claim,
        )
        self._leases.start()
        if claim and self.attempts.workers:
            await asyncio.to_thread(warm_up)
        if claim:
            self._loops.append(asyncio.create_task(self.claims.run(), name="claim"))

    def poke(self) -> None:
        """Look for SCHEDULED executions now (after a trigger fired in this process)."""
        self.claims.wake.set()

    async def stop(self, *, graceful: bool = True, grace: float = 60.0) -> None:
        """Stop every execution here. ``graceful``: each takes a checkpoint and is handed
        back (SCHEDULED, no owner) so that another instance — or this one after a restart
        — resumes it there; otherwise each is aborted and handed back."""
        self.claims.paused = True
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        handles = list(self.running.values())
        for h in handles:
            h.stop_requested = True
            if graceful:
                h.stop_at_checkpoint()
            else:
                h.abort()
        tasks = [h.task for h in handles if h.task is not None]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace if graceful else 10)
            for h in handles:
                if h.task in pending:
                    h.kill()
            if pending:
                await asyncio.wait(pending, timeout=10)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._leases is not None:
            self._leases.stop()
        await asyncio.to_thread(self.journal.close)

    # --- the original interface --------------------------------------------------------

    async def submit(self, job_name: str, execution_id: str | None = None) -> str:
        """Run an execution of ``job_name`` here now: the given SCHEDULED execution (it is
        claimed by this instance) or a new MANUAL one. Returns the execution id."""
        eid = execution_id or uuid.uuid4().hex
        ex, own = self.store.executions, self.store.ownership
        try:
            record = await asyncio.to_thread(ex.get, eid)
        except ExecutionNotFound:
            record = await self.journal.call(ex.create, job_name, eid, owner_instance=self.instance)
        else:
            if record.owner_instance not in (None, self.instance):
                raise LifecycleError(f"execution {eid!r} is owned by {record.owner_instance}")
            claimed = await self.journal.call(own.claim_one, eid, self.instance)
            if claimed is None:
                raise LifecycleError(f"execution {eid!r} is {record.status}, not SCHEDULED")
            record = claimed
        self._start(record)
        return eid

    async def cancel(self, execution_id: str) -> ExecutionStatus:
        """Cancel an execution wherever it runs; returns the status it had. A running one
        takes a checkpoint and stops (CANCELLED); after ``cancel_grace`` it is killed."""
        h = self.running.get(execution_id)
        if h is not None:
            h.cancel_requested = True
            h.stop_at_checkpoint()
            asyncio.get_running_loop().call_later(self.cancel_grace, self._force, h)
            return ExecutionStatus.RUNNING
        ex = self.store.executions
        if await self.journal.call(ex.cancel_unowned, execution_id, "cancelled before it started"):
            return ExecutionStatus.SCHEDULED
        record = await self.journal.call(ex.request_control, execution_id, "cancel")
        return record.status

    def _force(self, h: ExecutionHandle) -> None:
        if h.task is not None and not h.task.done():
            log.warning(
                "execution %s did not stop within %.0f s: killed", h.execution_id, self.cancel_grace
            )
            h.kill()

    async def pause(self, execution_id: str) -> None:
        await self._pause_resume(execution_id, pause=True)

    async def resume(self, execution_id: str) -> None:
        await self._pause_resume(execution_id, pause=False)

    async def _pause_resume(self, execution_id: str, *, pause: bool) -> None:
        h = self.running.get(execution_id)
        if h is None:
            await self.journal.call(
                self.store.executions.request_control,
                execution_id,
                "pause" if pause else "resume",
            )
            return
        if not h.running:
            raise LifecycleError(f"execution {execution_id!r} is not running yet")
        if pause:
            h.pause()
        else:
            h.resume()
        await self.journal.call(
            self.store.executions.set_paused, execution_id, pause, self.instance
        )

    async def checkpoint(self, execution_id: str, savepoint: str | None = None) -> None:
        h = self.running.get(execution_id)
        if h is not None and h.checkpoint(savepoint):
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
        prepared: PreparedJob | None = None,
    ) -> ExecutionHandle:
        h = ExecutionHandle(record.execution_id, record.job_name, retry_count=record.retry_count)
        if metrics is not None:
            h.metrics = metrics
        self.running[record.execution_id] = h
        h.task = asyncio.create_task(
            self.attempts.supervise(h, record, job, restore_from, prepared),
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
        prepared: PreparedJob | None = None,
    ) -> JobResult | None:
        """Run an execution this process owns, with ``job`` as given (which may hold
        Python functions; ``prepared`` if the caller prepared it already) to its end, in
        this process. Used by ``pipeline-run run``."""
        h = self._start(
            record, job=job, restore_from=restore_from, metrics=metrics, prepared=prepared
        )
        assert h.task is not None
        return await h.task

    def _done(self, h: ExecutionHandle) -> None:
        self.running.pop(h.execution_id, None)
        self.poke()

    def _lost(self, execution_id: str) -> None:
        h = self.running.get(execution_id)
        if h is not None and not h.lost:
            log.warning(
                "execution %s was taken over by another owner; stopping it here", execution_id
            )
            h.lost = True
            h.kill()

    def _request(self, execution_id: str, action: str) -> None:
        async def act() -> None:
            try:
                if action == "cancel":
                    await self.cancel(execution_id)
                elif action in ("pause", "resume"):
                    await self._pause_resume(execution_id, pause=action == "pause")
            except PipelineError as exc:
                log.warning("control request %s for %s: %s", action, execution_id, exc)

        task = asyncio.ensure_future(act())
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)
