"""JobScheduler: fires CRON, MANUAL, EVENT and DEPENDENCY triggers.

The scheduler only *creates* executions (SCHEDULED, no owner) — in a database
transaction that also enforces "disabled jobs never run" and "no two executions of a job
overlap" (a trigger that finds the job active is recorded as a CANCELLED "skipped"
execution). Executors of any runner instance claim them. So several instances can run
the scheduler at once: cron rows are fired under ``FOR UPDATE SKIP LOCKED`` and each tick
fires in exactly one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from pipeline_core.config.secrets import check_references, structure_config
from pipeline_core.errors import ConfigError, PipelineError, Problem
from pipeline_core.model.schedule import ScheduleConfig, ScheduleType
from pipeline_core.plugins.manager import Plugins
from pipeline_core.store import MetadataStore
from pipeline_core.store.schedules import Fired, ScheduleRecord
from pipeline_core.triggers import EventMessage, EventTrigger

__all__ = ["JobScheduler"]

log = logging.getLogger("pipeline_core.scheduler")


class JobScheduler:
    """The original design's JobScheduler: ``schedule``, ``unschedule``, ``trigger_job``,
    ``get_next_execution_time``; ``start()`` runs the trigger loops."""

    def __init__(
        self,
        store: MetadataStore,
        plugins: Plugins,
        *,
        on_fired: Any = None,
        tick: float = 0.5,
        event_refresh: float = 5.0,
    ) -> None:
        self.store = store
        self.plugins = plugins
        #: called with each Fired that scheduled an execution (the executor's ``poke``)
        self.on_fired = on_fired
        self.tick = tick
        self.event_refresh = event_refresh
        self.fired: list[Fired] = []  # this process's history, newest last (bounded)
        self._loops: list[asyncio.Task[None]] = []
        self._listeners: dict[
            tuple[str, str, str], tuple[EventTrigger[Any], asyncio.Task[None]]
        ] = {}

    # --- the original interface ---------------------------------------------------------

    def schedule(self, job_name: str, config: ScheduleConfig) -> ScheduleRecord:
        """Store ``config`` as the job's schedule. ConfigError for a ``${file:…}`` of its
        ``event_config`` outside the allowed secret directories (nothing is read)."""
        refused = check_references(config.event_config, "event_config")
        if refused:
            raise ConfigError(
                [
                    Problem(e.message, job=job_name, component="schedule", field=e.field)
                    for e in refused
                ]
            )
        return self.store.schedules.put(job_name, config)

    def unschedule(self, job_name: str) -> bool:
        return self.store.schedules.delete(job_name)

    def trigger_job(self, job_name: str, *, triggered_by: str = "MANUAL") -> str:
        """Start ``job_name`` now; returns the execution id. JobDisabled / JobAlreadyRunning."""
        fired = self.store.schedules.trigger(job_name, triggered_by=triggered_by)
        self._fired([fired])
        return fired.execution_id

    def get_next_execution_time(self, job_name: str) -> dt.datetime | None:
        """The next cron tick (UTC); None for schedules that are not time-based."""
        return self.store.schedules.next_trigger_time(job_name)

    # --- loops ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loops.append(asyncio.create_task(self._time_loop(), name="scheduler"))
        self._loops.append(asyncio.create_task(self._event_loop(), name="event-triggers"))

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        for key in list(self._listeners):
            await self._stop_listener(key)

    def _fired(self, fired: list[Fired]) -> None:
        for f in fired:
            if f.skipped:
                log.info("%s trigger of %s skipped: %s", f.triggered_by, f.job_name, f.skipped)
            else:
                log.info("%s trigger: %s execution %s", f.triggered_by, f.job_name, f.execution_id)
        self.fired.extend(fired)
        del self.fired[:-1000]
        if self.on_fired is not None and any(not f.skipped for f in fired):
            self.on_fired()

    async def run_once(self) -> list[Fired]:
        """One pass: due cron ticks, then satisfied dependencies."""
        fired = await asyncio.to_thread(self.store.schedules.fire_due_cron)
        fired += await asyncio.to_thread(self.store.schedules.fire_dependencies)
        self._fired(fired)
        return fired

    async def _time_loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("scheduler pass failed")
            await asyncio.sleep(self.tick)

    # --- EVENT triggers ------------------------------------------------------------------

    async def _event_loop(self) -> None:
        while True:
            try:
                await self.refresh_event_triggers()
            except Exception:
                log.exception("refreshing event triggers failed")
            await asyncio.sleep(self.event_refresh)

    async def refresh_event_triggers(self) -> None:
        """Start a listener for each enabled EVENT schedule, stop those no longer wanted."""
        wanted: dict[tuple[str, str, str], ScheduleConfig] = {}
        for rec in await asyncio.to_thread(self.store.schedules.list, ScheduleType.EVENT):
            cfg = rec.config
            if cfg.enabled and cfg.event_trigger and cfg.event_topic:
                wanted[(rec.job_name, cfg.event_trigger, cfg.event_topic)] = cfg
        for key in list(self._listeners):
            if key not in wanted or self._listeners[key][1].done():
                await self._stop_listener(key)
        for key, cfg in wanted.items():
            if key not in self._listeners:
                try:
                    self._listeners[key] = self._start_listener(key[0], cfg)
                except PipelineError as exc:
                    log.error("EVENT schedule of job %s: %s", key[0], exc)

    def _start_listener(
        self, job_name: str, cfg: ScheduleConfig
    ) -> tuple[EventTrigger[Any], asyncio.Task[None]]:
        assert cfg.event_trigger and cfg.event_topic
        cls = self.plugins.triggers.get(cfg.event_trigger)
        options = structure_config(  # the control plane resolves a trigger's secrets
            cfg.event_config,
            cls.config_cls,
            job=job_name,
            component=f"event trigger ({cfg.event_trigger})",
        )
        trigger: EventTrigger[Any] = cls(options, cfg.event_topic)
        label = f"{cfg.event_trigger}:{cfg.event_topic}"

        async def fire(message: EventMessage) -> None:
            detail = f" ({message.where})" if message.where else ""
            fired = await asyncio.to_thread(
                self.store.schedules.trigger,
                job_name,
                triggered_by="EVENT",
                message=f"event on {label}{detail}",
                raise_if_running=False,
            )
            self._fired([fired])

        async def listen() -> None:
            delay = 1.0
            while True:
                try:
                    await trigger.run(fire)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "event trigger %s of job %s: %s; again in %.0f s",
                        label,
                        job_name,
                        exc,
                        delay,
                    )
                    with contextlib.suppress(Exception):
                        await trigger.close()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60.0)

        log.info("listening for events on %s for job %s", label, job_name)
        return trigger, asyncio.create_task(listen(), name=f"trigger:{job_name}:{label}")

    async def _stop_listener(self, key: tuple[str, str, str]) -> None:
        trigger, task = self._listeners.pop(key)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await trigger.close()
