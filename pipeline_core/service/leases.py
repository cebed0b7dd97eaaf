"""The owner's lease: heartbeats, and (in ``serve``) claiming and taking over executions.

Heartbeats run on a thread of their own, not on the event loop: a foreground run whose
step function blocks the loop still renews its lease, so no other instance takes over a
live execution. Each beat refreshes ``heartbeat_time`` and the counts of every execution
the owner holds, and brings back control requests other processes left; an execution
the owner no longer holds (taken over after its lease expired) is reported as lost, and
its attempt is stopped at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline_core.service.journal import Journal

if TYPE_CHECKING:
    from pipeline_core.service.handle import ExecutionHandle

__all__ = ["ClaimLoop", "LeaseKeeper"]

log = logging.getLogger("pipeline_core.executor")


class LeaseKeeper:
    """Heart-beats every execution in ``running`` on a thread, every ``interval`` s."""

    def __init__(
        self,
        journal: Journal,
        running: dict[str, ExecutionHandle],
        *,
        interval: float,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[str], None],
        on_request: Callable[[str, str], None],
        beat_instance: bool = True,
    ) -> None:
        self.journal = journal
        self.running = running
        self.interval = interval
        self.loop = loop
        self.on_lost = on_lost
        self.on_request = on_request
        self.beat_instance = beat_instance
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception:
                log.exception("heartbeat failed")
            self._stop.wait(self.interval)

    def beat(self) -> None:
        store, owner = self.journal.store, self.journal.owner
        if self.beat_instance:
            self.journal.call_blocking(store.instances.beat, owner)
        handles = list(self.running.values())
        if not handles:
            return
        progress = {
            h.execution_id: (
                h.metrics.total_read,
                h.metrics.total_failed,
                h.metrics.records_read,
                h.metrics.failed_records,
            )
            for h in handles
        }
        owned, requests = self.journal.call_blocking(store.ownership.beat, owner, progress)
        for eid in progress.keys() - owned:
            self.loop.call_soon_threadsafe(self.on_lost, eid)
        for eid, action in requests.items():
            self.loop.call_soon_threadsafe(self.on_request, eid, action)


class ClaimLoop:
    """``serve``: claim SCHEDULED executions while slots are free, and release those whose
    owner stopped heart-beating (then claimed like any other)."""

    def __init__(
        self,
        journal: Journal,
        *,
        lease: dt.timedelta,
        poll_interval: float,
        free_slots: Callable[[], int],
        start: Callable[..., object],
        is_running: Callable[[str], bool],
    ) -> None:
        self.journal = journal
        self.lease = lease
        self.poll_interval = poll_interval
        self.free_slots = free_slots
        self.start = start
        self.is_running = is_running
        self.wake = asyncio.Event()
        self.paused = False

    async def run(self) -> None:
        while True:
            try:
                if not self.paused:
                    await self.claim()
                    await self.take_over()
            except Exception:
                log.exception("claiming executions failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.poll_interval)
            self.wake.clear()

    async def claim(self) -> None:
        free = self.free_slots()
        if free <= 0:
            return
        own = self.journal.store.ownership
        for record in await self.journal.call(own.claim, self.journal.owner, free):
            log.info("running %s execution %s", record.job_name, record.execution_id)
            self.start(record)

    async def take_over(self) -> None:
        own = self.journal.store.ownership
        for eid, owner in await asyncio.to_thread(own.expired, self.lease):
            if self.is_running(eid):
                continue  # ours: the heartbeat is merely late
            if await self.journal.call(own.take_over, eid, owner, self.lease):
                log.warning("took over execution %s from %s (lease expired)", eid, owner)
                self.wake.set()
