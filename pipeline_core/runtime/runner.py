"""Running one execution: source task → bounded buffer → operator chain → sink.

One asyncio task reads the source into the :class:`BatchBuffer`; the execution's own task
takes batches out, runs them through the operators and writes the results to the sink in
``sink_batch_size`` chunks. Work per batch is a handful of Python calls; nothing here is
per record except what the operators' list comprehensions do.

When a bounded source is exhausted the runtime flushes held-back records (``batch``),
then takes a final checkpoint the same way a periodic one is taken: ``prepare_commit`` on
the sinks, then ``on_checkpoint_complete`` on sinks and source. On failure or cancellation
no commit happens and every component is closed (two-phase sinks discard what they held).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from pipeline_core.checkpoint.coordinator import Barrier, CheckpointCoordinator, Wake
from pipeline_core.checkpoint.identity import source_identity, verify_restore
from pipeline_core.checkpoint.repository import CheckpointInfo, CheckpointRepository
from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.config.secrets import redact
from pipeline_core.errors import ConfigError
from pipeline_core.io import DEFAULT_BATCH_SIZE, FailedRecord, RuntimeContext, Sink, Source
from pipeline_core.plugins.manager import Plugins, load_plugins
from pipeline_core.runtime.buffer import BatchBuffer, PositionOnly
from pipeline_core.runtime.control import ExecutionControl
from pipeline_core.runtime.errors_policy import FailureCollector
from pipeline_core.runtime.listener import PluginNotifier, RunListener
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.operators import Operator
from pipeline_core.runtime.prepare import PreparedJob, prepare
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.runtime.workdir import open_workdir
from pipeline_core.state.api import StateManager
from pipeline_core.state.backend import StateBackend

__all__ = ["Checkpointing", "execute", "run_job"]

log = logging.getLogger("pipeline_core.runtime")


class _End:
    """Control item: the source is exhausted."""


class _Stopped(Exception):
    """Raised out of the pipeline after the checkpoint a stop request asked for."""


class _SourceFailed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = _End()


async def _apply(
    operators: list[Operator], records: list[Any], errors: FailureCollector
) -> list[Any]:
    for op in operators:
        if not records:
            return records
        records = await op.aprocess(records, errors) if op.is_async else op.process(records, errors)
    return records


def batch_size(configured: int | None, component: Source[Any] | Sink[Any]) -> int:
    """The job's setting, else what the component prefers, else the default."""
    return configured or component.preferred_batch_size or DEFAULT_BATCH_SIZE


class _Execution:
    """State of one running execution; lives only inside :func:`execute`."""

    def __init__(
        self,
        prepared: PreparedJob,
        source: Source[Any],
        sink: Sink[Any],
        dead_letter: Sink[Any] | None,
        operators: list[Operator],
        metrics: RunMetrics,
        control: ExecutionControl | None = None,
    ) -> None:
        cfg = prepared.job.config
        self.control = control
        self.cfg = cfg
        self.source = source
        self.sink = sink
        self.dead_letter = dead_letter
        self.operators = operators
        self.metrics = metrics
        self.errors = FailureCollector(cfg.on_error, record_in_errors=cfg.record_in_errors)
        self.pending: list[Any] = []
        self.last_position: dict[str, Any] | None = None
        self.coordinator: CheckpointCoordinator | None = None
        self.written_at_checkpoint = 0
        self.source_batch = batch_size(cfg.source_batch_size, source)
        self.sink_batch = batch_size(cfg.sink_batch_size, sink)
        capacity = max(1, cfg.buffer_size // self.source_batch)
        metrics.buffer_capacity_batches = capacity
        self.buffer = BatchBuffer(capacity, cfg.backpressure, metrics)

    async def pump(self) -> None:
        """The source task: read batches into the buffer until exhausted."""
        metrics, buffer, control = self.metrics, self.buffer, self.control
        reader = self.source.read()
        try:
            while True:
                if control is not None and (control.paused or control.stop_requested):
                    # paused: pull nothing more until resumed (positions stay put);
                    # stopping: the checkpoint covers what was read, read no further
                    await control.wait_running()
                    if control.stop_requested:
                        await asyncio.Event().wait()  # until the execution ends
                try:
                    batch = await anext(reader)
                except StopAsyncIteration:
                    break
                metrics.records_read += len(batch.records)
                metrics.batches_read += 1
                await buffer.put(batch)
                # Yield so that the pipeline runs even when put() did not have to wait.
                await asyncio.sleep(0)
            buffer.put_control(_END)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            buffer.put_control(_SourceFailed(exc))
        finally:
            aclose = getattr(reader, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _write(self, records: list[Any]) -> None:
        await self.sink.write(records)
        self.metrics.records_written += len(records)

    async def _handle_failures(self) -> None:
        failures = self.errors.take()
        if not failures:
            return
        self.metrics.failed_records += len(failures)
        if self.metrics.first_failure is None:
            first = failures[0]
            self.metrics.first_failure = redact(f"{first.where}: {first.error}")
        if self.dead_letter is not None:
            await self.dead_letter.write([_dead_letter_record(f) for f in failures])

    async def process(self) -> None:
        """Take batches from the buffer until the end of input."""
        sink_batch = self.sink_batch
        operators, errors, buffer = self.operators, self.errors, self.buffer
        while True:
            if self.pending and not len(buffer):
                # Coalesce only while more input is waiting: an idle source must not
                # leave records sitting in the runtime.
                out, self.pending = self.pending, []
                await self._write(out)
            item = await buffer.get()
            if item is _END:
                break
            if isinstance(item, _SourceFailed):
                raise item.exc
            if isinstance(item, PositionOnly):
                self.last_position = item.position
                continue
            if isinstance(item, Wake):
                barrier = self.coordinator.due(0, False) if self.coordinator else None
                if barrier is not None:
                    await self.checkpoint(barrier)
                continue
            self.metrics.records_processed += len(item.records)
            if item.failures:
                errors.extend(item.failures)
            records = await _apply(operators, item.records, errors)
            if records:
                if self.pending:
                    self.pending.extend(records)
                else:
                    self.pending = records
                if len(self.pending) >= sink_batch:
                    out, self.pending = self.pending, []
                    await self._write(out)
            if errors.failures:
                await self._handle_failures()
            self.last_position = item.position
            if self.coordinator is not None:
                barrier = self.coordinator.due(
                    len(item.records), item.checkpoint_after, item.checkpoint_needed
                )
                if barrier is not None:
                    await self.checkpoint(barrier)
            # get() does not suspend while batches are waiting: yield once per batch, or
            # steps that never await would starve the checkpoint timer and cancellation
            await asyncio.sleep(0)
        await self._flush_operators()

    async def checkpoint(self, barrier: Barrier | None) -> None:
        """Everything before the barrier is processed: write it out and snapshot."""
        assert self.coordinator is not None
        if self.pending:
            out, self.pending = self.pending, []
            await self._write(out)
        position = self.last_position
        cid = await self.coordinator.take(barrier, position)
        self.written_at_checkpoint = self.metrics.records_written
        if position is not None:
            await self.source.on_checkpoint_complete(cid, position)
        if self.control is not None and self.control.stop_requested:
            raise _Stopped

    async def _flush_operators(self) -> None:
        for i, op in enumerate(self.operators):
            held = op.flush()
            if held:
                self.pending.extend(await _apply(self.operators[i + 1 :], held, self.errors))
        await self._handle_failures()
        if self.pending:
            out, self.pending = self.pending, []
            await self._write(out)

    async def commit(self, checkpoint_id: int) -> None:
        """Final commit of a bounded run. With checkpointing it is a real checkpoint (a
        resumed run then starts after the end); without, pre-commit and commit sinks."""
        sinks = [s for s in (self.sink, self.dead_letter) if s is not None]
        wants_commit = [await s.finish() for s in sinks]
        if self.coordinator is not None:
            fresh = (
                self.coordinator.completed
                and self.coordinator.records_since == 0
                and self.metrics.records_written == self.written_at_checkpoint
                and not any(wants_commit)
            )
            if not fresh:  # else the last checkpoint already covers the end of input
                await self.checkpoint(None)
            return
        for s in sinks:
            await s.prepare_commit(checkpoint_id)
        for s in sinks:
            await s.on_checkpoint_complete(checkpoint_id)
        if self.last_position is not None:
            await self.source.on_checkpoint_complete(checkpoint_id, self.last_position)


class _Guarded:
    """A listener that raises is logged; it never breaks the job it listens to."""

    def __init__(self, inner: RunListener) -> None:
        self.inner = inner

    def _call(self, name: str, *args: Any) -> None:
        try:
            getattr(self.inner, name)(*args)
        except Exception:
            log.exception("run listener %s.%s raised; ignored", type(self.inner).__name__, name)

    def job_started(self) -> None:
        self._call("job_started")

    def checkpoint_started(self, checkpoint_id: int) -> None:
        self._call("checkpoint_started", checkpoint_id)

    def checkpoint_completed(self, checkpoint_id: int, state: dict[str, Any]) -> None:
        self._call("checkpoint_completed", checkpoint_id, state)

    def checkpoint_failed(self, checkpoint_id: int, error: BaseException) -> None:
        self._call("checkpoint_failed", checkpoint_id, error)

    def job_ended(self, result: JobResult) -> None:
        self._call("job_ended", result)


def _dead_letter_record(failed: FailedRecord) -> dict[str, Any]:
    record = failed.record
    if isinstance(record, bytes | bytearray):
        record = bytes(record).decode("utf-8", errors="replace")
    # where (a source's path:line) and error are the framework's text, so redacted; the
    # record is the job's data, written as it came
    return {"where": redact(failed.where), "error": redact(failed.error), "record": record}


def _outputs(sinks: list[tuple[str, Sink[Any] | None]]) -> tuple[str, ...]:
    lines = []
    for label, sink in sinks:
        text = sink.describe_output() if sink is not None else None
        if text:
            lines.append(redact(f"{label}: {text}"))
    return tuple(lines)


@attrs.frozen(kw_only=True)
class Checkpointing:
    """Checkpoint settings of one execution: where rows and files go, what to restore."""

    repository: CheckpointRepository
    storage: CheckpointStorage
    #: Resume from this completed checkpoint (or savepoint).
    restore_from: CheckpointInfo | None = None
    #: Id of this run's first checkpoint (a retried execution continues its numbering).
    first_checkpoint_id: int = 1
    #: ``restore_from`` was chosen by the framework (a new STREAMING execution continuing
    #: the job's newest offsets), not asked for: if the source changed since, start fresh
    #: instead of failing with SourceChanged.
    restore_chosen_by_framework: bool = False


def _state_backend(prepared: PreparedJob, plugins: Plugins, workdir: Path) -> StateBackend[Any]:
    cls = plugins.state_backends.get(prepared.job.config.state_backend)
    backend: StateBackend[Any] = cls(cls.config_cls())
    backend.open(workdir)
    return backend


async def execute(
    prepared: PreparedJob,
    plugins: Plugins,
    *,
    execution_id: str | None = None,
    restored_position: dict[str, Any] | None = None,
    metrics: RunMetrics | None = None,
    checkpointing: Checkpointing | None = None,
    on_coordinator: Any = None,
    control: ExecutionControl | None = None,
    run_id: str | None = None,
    listener: RunListener | None = None,
) -> JobResult:
    """Run one execution of a prepared job to its end.

    Returns a JobResult with status COMPLETED or FAILED (``result.exception`` holds the
    error). Cancellation (Ctrl-C) closes every component and re-raises CancelledError.
    With ``checkpointing``, barriers are triggered by the job's config (and manual
    requests), and ``checkpointing.restore_from`` is restored before the first record.
    ``on_coordinator(coordinator)`` is called once it exists (for manual triggers).
    ``control`` pauses/resumes the source and stops at a checkpoint; ``run_id`` (default:
    the execution id) tells components which attempt of the execution this is.
    ``listener`` hears the execution's events (default: the plugins' notification hooks);
    a listener that raises is logged and ignored.
    """
    job, cfg = prepared.job, prepared.job.config
    execution_id = execution_id or uuid.uuid4().hex
    metrics = metrics if metrics is not None else RunMetrics()

    coordinator_box: list[CheckpointCoordinator] = []

    async def checkpoint_now() -> int:
        return await coordinator_box[0].checkpoint_now()

    def ctx(component: str, batch_size: int) -> RuntimeContext:
        return RuntimeContext(
            job_name=job.name,
            execution_id=execution_id,
            component=component,
            batch_size=batch_size,
            run_id=run_id or execution_id,
            checkpoint=checkpoint_now if checkpointing is not None else None,
            exclusive=not cfg.allow_concurrent,
        )

    events: RunListener = _Guarded(listener or PluginNotifier(plugins, job, execution_id))

    try:  # the components' secret references are resolved here, in the execution
        source = prepared.make_source()
        sink = prepared.make_sink()
        dead_letter = prepared.make_dead_letter() if prepared.make_dead_letter else None
    except ConfigError as exc:
        not_started = JobResult.not_started(job.name, execution_id, exc)
        events.job_ended(not_started)
        return not_started
    metrics.source_progress = source.progress
    executor = ProcessPoolExecutor(cfg.parallelism) if cfg.parallelism > 1 else None
    workdir = open_workdir(_work_root(), execution_id, run_id or execution_id)
    try:
        backend = _state_backend(prepared, plugins, workdir.path)
    except BaseException:  # nothing else is open yet: give the directory back now
        workdir.close()
        if executor is not None:
            executor.shutdown(cancel_futures=True)
        raise
    operators = prepared.stream.build(executor, cfg.parallelism, StateManager(backend))
    run = _Execution(prepared, source, sink, dead_letter, operators, metrics, control)
    identity = source_identity(source, job.name) if checkpointing is not None else None
    if checkpointing is not None:
        run.coordinator = CheckpointCoordinator(
            job=job,
            execution_id=execution_id,
            repository=checkpointing.repository,
            storage=checkpointing.storage,
            backend=backend,
            operators=operators,
            sinks=[s for s in (sink, dead_letter) if s is not None],
            listener=events,
            counts=metrics.counts_at_barrier,
            source_identity=identity,
        )
        run.coordinator.next_id = checkpointing.first_checkpoint_id
        coordinator_box.append(run.coordinator)
        run.coordinator.attach(run.buffer.put_control)
        if control is not None:
            control.coordinator = run.coordinator
        if on_coordinator is not None:
            on_coordinator(run.coordinator)
    opened: list[Source[Any] | Sink[Any]] = []
    status, error, stopped = ExecutionStatus.FAILED, None, False
    tasks: list[asyncio.Task[None]] = []
    try:
        await sink.open(ctx(prepared.sink_label, run.sink_batch))
        opened.append(sink)
        if dead_letter is not None:
            await dead_letter.open(
                ctx("dead_letter sink", batch_size(cfg.sink_batch_size, dead_letter))
            )
            opened.append(dead_letter)
        restore = checkpointing.restore_from if checkpointing else None
        if (
            run.coordinator is not None
            and checkpointing is not None
            and restore is not None
            and verify_restore(
                restore,
                identity,
                chosen_by_framework=checkpointing.restore_chosen_by_framework,
            )
        ):
            log.info(
                "job %s: restoring checkpoint %d of execution %s from %s: %s",
                job.name,
                restore.checkpoint_id,
                restore.execution_id,
                restore.storage_path,
                restore.state_data.get("source_state"),
            )
            restored_position = await run.coordinator.restore(restore)
            if restore.execution_id == execution_id:
                # an execution's counts span its attempts (not another execution's)
                metrics.before = dict(restore.state_data.get("counts") or {})
        opened.append(source)  # close() is idempotent, so close it even if open() failed
        await source.open(ctx(prepared.source_label, run.source_batch), restored_position)
        run.last_position = restored_position
        events.job_started()
        tasks.append(asyncio.create_task(run.pump(), name=f"{job.name}:{execution_id}:source"))
        if run.coordinator is not None:
            tasks.append(asyncio.create_task(run.coordinator.run_timer(), name="checkpoint-timer"))
        await run.process()
        await run.commit(1)
        status = ExecutionStatus.COMPLETED
    except _Stopped:
        status, stopped = ExecutionStatus.CANCELLED, True
    except asyncio.CancelledError:
        status = ExecutionStatus.CANCELLED
        raise
    except Exception as exc:
        error = exc
        if run.errors.raised:  # on_error: fail: the record it failed on counts too
            metrics.failed_records += 1
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for component in reversed(opened):
            try:
                await component.close()
            except Exception:
                log.exception("closing %s failed", type(component).__name__)
        backend.close()
        workdir.close()
        if executor is not None:
            executor.shutdown(cancel_futures=True)
        metrics.stopped_at = metrics.started_at + metrics.elapsed
        result = JobResult(
            job_name=job.name,
            execution_id=execution_id,
            status=status,
            records_read=metrics.records_read,
            records_written=metrics.records_written,
            failed_records=metrics.failed_records,
            dropped_records=metrics.dropped_records,
            duration_s=metrics.elapsed,
            error=redact(str(error)) if error is not None else None,
            error_trace=redact("".join(traceback.format_exception(error))) if error else None,
            exception=error,
            last_position=run.last_position,
            outputs=_outputs(
                [(prepared.sink_label, sink), ("dead_letter sink", dead_letter)]
                if status is ExecutionStatus.COMPLETED
                else []
            ),
            checkpoints=tuple(run.coordinator.completed) if run.coordinator else (),
            stopped_at_checkpoint=stopped,
        )
        events.job_ended(result)
    return result


def _work_root() -> Path:
    """Where executions keep working state (an LMDB backend can be large: not /tmp)."""
    root = Path.cwd() / ".pipeline" / "work"
    root.mkdir(parents=True, exist_ok=True)
    return root


async def run_job(
    job: Any,
    plugins: Plugins | None = None,
    *,
    execution_id: str | None = None,
    restored_position: dict[str, Any] | None = None,
    metrics: RunMetrics | None = None,
    checkpointing: Checkpointing | None = None,
) -> JobResult:
    """Validate and run ``job`` (a PipelineJob) once; discovers plugins if none are given."""
    plugins = plugins if plugins is not None else load_plugins()
    prepared = prepare(job, plugins, resolve_secrets=True)
    return await execute(
        prepared,
        plugins,
        execution_id=execution_id,
        restored_position=restored_position,
        metrics=metrics,
        checkpointing=checkpointing,
    )
