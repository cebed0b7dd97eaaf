"""PipelineService: one runner instance — the control plane.

The scheduler, the executor's leases, claims and control requests, and the REST API live
in this process and never run user code: every execution runs in a worker process
(``workers=True``, the default; ``False`` runs them in this process, for embedding and
for tests that use in-process Python objects).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline_core.errors import PipelineError
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.validation import job_validator
from pipeline_core.service.executor import JobExecutor
from pipeline_core.service.scheduler import JobScheduler
from pipeline_core.store import MetadataStore, models
from pipeline_core.store.executions import instance_name

if TYPE_CHECKING:
    from pipeline_core.api.metrics import PipelineMetrics

__all__ = ["PipelineService", "SingleInstanceError"]

log = logging.getLogger("pipeline_core.service")


def _job_names(store: MetadataStore) -> list[str]:
    """The registered jobs' names (one light query: the metrics exist for each at 0)."""
    with Session(store.engine) as session:
        return list(session.scalars(select(models.JobDefinition.job_name)))


class SingleInstanceError(PipelineError):
    """A second runner instance on an SQLite metadata database."""


class PipelineService:
    def __init__(
        self,
        store: MetadataStore,
        plugins: Plugins,
        *,
        instance: str | None = None,
        checkpoint_url: str | None = None,
        max_concurrent: int | None = None,
        lease: dt.timedelta = dt.timedelta(seconds=15),
        heartbeat_interval: float = 2.0,
        scheduler_tick: float = 0.5,
        base_dir: str | None = None,
        workers: bool = True,
    ) -> None:
        self.store = store
        self.plugins = plugins
        # what the API registers is checked against these connectors
        store.registry.validator = job_validator(plugins)
        self.instance = instance or instance_name()
        self.lease = lease
        self.executor = JobExecutor(
            store,
            plugins,
            instance=self.instance,
            checkpoint_url=checkpoint_url,
            max_concurrent=max_concurrent,
            heartbeat_interval=heartbeat_interval,
            lease=lease,
            base_dir=base_dir,
            workers=workers,
        )
        self.scheduler = JobScheduler(
            store, plugins, on_fired=self.executor.poke, tick=scheduler_tick
        )
        self._metrics: PipelineMetrics | None = None

    @property
    def metrics(self) -> PipelineMetrics:
        """The service's Prometheus metrics (created on first use; registered as a plugin
        so the lifecycle hooks feed it)."""
        if self._metrics is None:
            from pipeline_core.api.metrics import PipelineMetrics

            executor, store = self.executor, self.store
            metrics = PipelineMetrics(
                lambda: [(h.job_name, h.metrics) for h in list(executor.running.values())],
                known_jobs=lambda: _job_names(store),
            )
            self.plugins.pm.register(metrics, name=f"metrics:{self.instance}")
            self._metrics = metrics
        return self._metrics

    def _check_single_instance(self) -> None:
        if not self.store.is_sqlite:
            return
        others = self.store.instances.live(self.lease, exclude=self.instance)
        if others:
            who = ", ".join(f"{o.instance_name} (pid {o.pid})" for o in others)
            raise SingleInstanceError(
                f"another runner instance uses this SQLite metadata database: {who}. "
                "SQLite supports one instance; for several, share a PostgreSQL database "
                "(PIPELINE_DATABASE_URL=postgresql+psycopg://…)"
            )

    async def start(self) -> None:
        await asyncio.to_thread(self._check_single_instance)
        await asyncio.to_thread(self.store.instances.register, self.instance)
        await self.executor.start()
        await self.scheduler.start()
        log.info("runner instance %s started on %s", self.instance, self.store.url)

    async def stop(self, *, graceful: bool = True) -> None:
        log.info("runner instance %s stopping", self.instance)
        await self.scheduler.stop()
        await self.executor.stop(graceful=graceful)
        await asyncio.to_thread(self.store.instances.stop, self.instance)
