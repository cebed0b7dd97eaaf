"""Prometheus metrics (prometheus-client): the original design's job, data, system and
Reactor metrics, labelled by job.

``PipelineMetrics`` is a plugin object: it counts finished executions and checkpoints
through the lifecycle hooks, and reads the live counters (throughput, buffer fill,
backpressure) of the executions running in this process when Prometheus scrapes. One
registry per service (not the global one), so tests and several services in one process
never share counters.

Every labelled series of a job exists, at 0, as soon as the job is known — registered
(``known_jobs``, read at each scrape) or seen by a hook (a foreground run) — not only
after its first event: ``increase()`` and ``rate()`` need a sample before the first
event, so a counter that first appears at 1 would hide that event from the shipped
alerts and panels. ``job_success_rate`` is the one exception: a ratio of nothing is
no data, not 0.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline_core.hookspecs import hookimpl
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.result import ExecutionStatus, JobResult

__all__ = ["PipelineMetrics"]

log = logging.getLogger("pipeline_core.metrics")

#: The final statuses an execution is counted under in ``job_execution_count``.
_FINAL = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)

_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, float("inf"))
_CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"))


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _memory_limit_bytes() -> int:
    """The container's memory limit (cgroup v2 / v1) if it has one, else the RAM."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                value = f.read().strip()
            if value.isdigit() and int(value) < 1 << 60:
                return int(value)
        except OSError:
            continue
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


class _LiveCollector(Collector):
    """Gauges read from the running executions at scrape time."""

    def __init__(
        self,
        running: Callable[[], Iterable[tuple[str, RunMetrics]]],
        known: Callable[[], Iterable[str]] = lambda: (),
    ) -> None:
        self.running = running
        self.known = known
        self._last_cpu = (time.monotonic(), time.process_time())

    def collect(self) -> Iterable[GaugeMetricFamily]:
        throughput = GaugeMetricFamily(
            "throughput", "Records read per second by running executions", labels=["job_name"]
        )
        buffer = GaugeMetricFamily(
            "buffer_size", "Records waiting in the source buffer", labels=["job_name"]
        )
        pressure = GaugeMetricFamily(
            "backpressure_status",
            "1 while a running execution's source buffer is full (the source waits or drops)",
            labels=["job_name"],
        )
        running = GaugeMetricFamily("job_running", "Executions running here", labels=["job_name"])
        per_job: dict[str, list[float]] = {job: [0.0, 0.0, 0.0, 0.0] for job in self.known()}
        for job, m in self.running():
            row = per_job.setdefault(job, [0.0, 0.0, 0.0, 0.0])
            row[0] += m.throughput
            row[1] += m.buffered_records
            full = m.buffer_capacity_batches and m.buffer_full
            row[2] = max(row[2], 1.0 if full else 0.0)
            row[3] += 1
        for job, (tp, buf, bp, n) in sorted(per_job.items()):
            throughput.add_metric([job], tp)
            buffer.add_metric([job], buf)
            pressure.add_metric([job], bp)
            running.add_metric([job], n)
        threads = GaugeMetricFamily("thread_count", "Threads of this process")
        threads.add_metric([], threading.active_count())
        memory = GaugeMetricFamily(
            "memory_usage", "Resident memory / the memory limit (cgroup, else RAM), 0-1"
        )
        memory.add_metric([], _rss_bytes() / _memory_limit_bytes())
        cpu = GaugeMetricFamily(
            "cpu_usage", "CPU time / wall time since the previous scrape, per core, 0-1"
        )
        cpu.add_metric([], self._cpu_usage())
        yield from (throughput, buffer, pressure, running, threads, memory, cpu)

    def _cpu_usage(self) -> float:
        now, used = time.monotonic(), time.process_time()
        last_now, last_used = self._last_cpu
        self._last_cpu = (now, used)
        wall = now - last_now
        return max(0.0, (used - last_used) / wall / (os.cpu_count() or 1)) if wall > 0 else 0.0


class PipelineMetrics:
    """The Prometheus registry of one service (or foreground run).

    ``running``: (job name, live counters) of the executions running in this process;
    ``known_jobs``: the names of the registered jobs (called at each scrape) — each gets
    all its series at 0 before its first event."""

    def __init__(
        self,
        running: Callable[[], Iterable[tuple[str, RunMetrics]]] = lambda: (),
        known_jobs: Callable[[], Iterable[str]] = lambda: (),
    ) -> None:
        self.known_jobs = known_jobs
        self._jobs: set[str] = set()
        self._jobs_lock = threading.Lock()
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory…
        PlatformCollector(registry=r)
        self.executions = Counter(
            "job_execution_count",
            "Finished executions by final status",
            ["job_name", "status"],
            registry=r,
        )
        self.success_rate = Gauge(
            "job_success_rate",
            "COMPLETED / (COMPLETED + FAILED) since start",
            ["job_name"],
            registry=r,
        )
        self.duration = Histogram(
            "job_duration_seconds",
            "Execution duration",
            ["job_name"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.processed = Counter(
            "records_processed", "Records read by finished executions", ["job_name"], registry=r
        )
        self.failed = Counter(
            "records_failed", "Bad records (skipped or dead-lettered)", ["job_name"], registry=r
        )
        self.dropped = Counter(
            "dropped_records",
            "Records dropped by backpressure (DROP/LATEST)",
            ["job_name"],
            registry=r,
        )
        self.checkpoints = Counter(
            "checkpoint_count", "Completed checkpoints", ["job_name"], registry=r
        )
        self.checkpoint_failures = Counter(
            "checkpoint_failures", "Checkpoints that failed", ["job_name"], registry=r
        )
        self.checkpoint_duration = Histogram(
            "checkpoint_duration_seconds",
            "Time to take a checkpoint",
            ["job_name"],
            buckets=_CHECKPOINT_BUCKETS,
            registry=r,
        )
        r.register(_LiveCollector(running, self._known))
        self._started: dict[tuple[str, int], float] = {}
        self._outcomes: dict[str, list[int]] = {}

    def _known(self) -> list[str]:
        with self._jobs_lock:
            return sorted(self._jobs)

    def know(self, job: str) -> None:
        """Create every labelled series of ``job`` at 0 (the first call; then nothing)."""
        if job in self._jobs:
            return
        with self._jobs_lock:
            if job in self._jobs:
                return
            for status in _FINAL:
                self.executions.labels(job, status.value)
            for family in (
                self.duration,
                self.processed,
                self.failed,
                self.dropped,
                self.checkpoints,
                self.checkpoint_failures,
                self.checkpoint_duration,
            ):
                family.labels(job)
            self._jobs.add(job)

    def exposition(self) -> bytes:
        try:
            names = list(self.known_jobs())
        except Exception as exc:  # the metadata database is down: export what is known
            log.warning("metrics: cannot list the registered jobs: %s", exc)
            names = []
        for name in names:
            self.know(name)
        return generate_latest(self.registry)

    # --- lifecycle hooks -------------------------------------------------------------

    def _finished(self, job: str, result: JobResult) -> None:
        self.know(job)
        self.executions.labels(job, result.status.value).inc()
        self.duration.labels(job).observe(result.duration_s)
        self.processed.labels(job).inc(result.records_read)
        self.failed.labels(job).inc(result.failed_records)
        self.dropped.labels(job).inc(result.dropped_records)
        done = self._outcomes.setdefault(job, [0, 0])
        if result.status is ExecutionStatus.COMPLETED:
            done[0] += 1
        elif result.status is ExecutionStatus.FAILED:
            done[1] += 1
        if sum(done):
            self.success_rate.labels(job).set(done[0] / sum(done))

    @hookimpl
    def pipeline_job_started(self, job: Any, execution_id: str) -> None:
        self.know(job.name)

    @hookimpl
    def pipeline_job_finished(self, job: Any, execution_id: str, result: JobResult) -> None:
        self._finished(job.name, result)

    @hookimpl
    def pipeline_job_failed(
        self, job: Any, execution_id: str, error: BaseException, result: JobResult
    ) -> None:
        self._finished(job.name, result)

    @hookimpl
    def pipeline_checkpoint_started(self, job: Any, execution_id: str, checkpoint_id: int) -> None:
        self.know(job.name)
        self._started[(execution_id, checkpoint_id)] = time.monotonic()

    @hookimpl
    def pipeline_checkpoint_completed(
        self, job: Any, execution_id: str, checkpoint_id: int, state: dict[str, Any]
    ) -> None:
        self.know(job.name)
        self.checkpoints.labels(job.name).inc()
        started = self._started.pop((execution_id, checkpoint_id), None)
        if started is not None:
            self.checkpoint_duration.labels(job.name).observe(time.monotonic() - started)

    @hookimpl
    def pipeline_checkpoint_failed(
        self, job: Any, execution_id: str, checkpoint_id: int, error: BaseException
    ) -> None:
        self._started.pop((execution_id, checkpoint_id), None)
        self.know(job.name)
        self.checkpoint_failures.labels(job.name).inc()
