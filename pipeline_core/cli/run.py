"""``pipeline-run run JOBFILE`` and ``pipeline-run validate JOBFILE``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid

import attrs
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.cli.output import err, out, print_error
from pipeline_core.errors import (
    CheckpointError,
    ConfigError,
    PipelineError,
    RetriableConnectorError,
)
from pipeline_core.model.loader import load_job_file
from pipeline_core.plugins.manager import Plugins, load_plugins
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.prepare import PreparedJob, prepare
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.runtime.runner import Checkpointing, execute
from pipeline_core.store import MetadataStore
from pipeline_core.store.recorder import ExecutionRecorder

__all__ = ["add_parsers"]

EXIT_FAILED, EXIT_CONFIG, EXIT_CANCELLED = 1, 2, 130


def _load(path: str) -> tuple[Plugins, PreparedJob]:
    plugins = load_plugins()
    for failure in plugins.failures:
        err.print(f"[yellow]warning:[/] {failure}", markup=True, soft_wrap=True)
    job = load_job_file(path)
    return plugins, prepare(job, plugins)


def _describe(prepared: PreparedJob) -> str:
    steps = len(prepared.stream)
    return f"{prepared.source_label} → {steps} step{'s' * (steps != 1)} → {prepared.sink_label}"


def _refresh(progress: Progress, task: TaskID, metrics: RunMetrics) -> None:
    src = metrics.source_progress() if metrics.source_progress else None
    known = src is not None and bool(src.total)
    progress.update(
        task,
        completed=src.done if src is not None and known else None,
        total=src.total if src is not None and known else None,
        records=f"{metrics.records_read:,}",
        rate=f"{metrics.throughput:,.0f}",
        failed=metrics.failed_records,
    )


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[records]} records"),
        TextColumn("{task.fields[rate]} rec/s"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


HEARTBEAT_SECONDS = 2.0


async def _run(
    prepared: PreparedJob,
    plugins: Plugins,
    metrics: RunMetrics,
    show_progress: bool,
    recording: _Recording | None,
) -> JobResult:
    """Execute, refreshing the progress bar and the execution's heartbeat meanwhile."""
    progress = _progress_bar() if show_progress else None
    task = (
        progress.add_task(prepared.job.name, total=None, records="0", rate="0", failed=0)
        if progress
        else None
    )

    async def ticker() -> None:
        last_beat = 0.0
        while True:
            if progress is not None and task is not None:
                _refresh(progress, task, metrics)
            if recording is not None and metrics.elapsed - last_beat >= HEARTBEAT_SECONDS:
                last_beat = metrics.elapsed
                await asyncio.to_thread(
                    recording.store.executions.heartbeat,
                    recording.execution_id,
                    processed=metrics.records_read,
                    failed=metrics.failed_records,
                )
            await asyncio.sleep(0.2)

    with progress if progress is not None else contextlib.nullcontext():
        tick = asyncio.create_task(ticker())
        try:
            return await execute(
                prepared,
                plugins,
                metrics=metrics,
                execution_id=recording.execution_id if recording else None,
                checkpointing=recording.checkpointing if recording else None,
            )
        finally:
            tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tick
            if progress is not None and task is not None:
                _refresh(progress, task, metrics)


@attrs.define
class _Recording:
    store: MetadataStore
    execution_id: str
    version: int
    checkpointing: Checkpointing


def _start_recording(
    args: argparse.Namespace, prepared: PreparedJob, plugins: Plugins
) -> _Recording:
    """Register (or version) the job file and create its execution record."""
    store = MetadataStore.open(args.database)
    restore_from = None
    if args.from_savepoint:
        restore_from = store.checkpoints.savepoint(prepared.job.name, args.from_savepoint)
        if restore_from is None:
            raise CheckpointError(
                f"job {prepared.job.name!r} has no completed savepoint "
                f"named {args.from_savepoint!r}"
            )
    elif args.resume:
        restore_from = store.checkpoints.latest_completed(prepared.job.name)
    definition, _outcome = store.registry.register_or_update(prepared.job)
    execution_id = uuid.uuid4().hex
    store.executions.create(prepared.job.name, execution_id, triggered_by="MANUAL")
    store.executions.transition(execution_id, ExecutionStatus.INITIALIZING)
    plugins.pm.register(
        ExecutionRecorder(store.executions, execution_id), name="execution-recorder"
    )
    checkpointing = Checkpointing(
        repository=store.checkpoints,
        storage=CheckpointStorage(args.checkpoint_url),
        restore_from=restore_from,
    )
    return _Recording(store, execution_id, definition.version, checkpointing)


def _summary(
    job_name: str, status: ExecutionStatus, metrics: RunMetrics, error: str | None
) -> None:
    colour = {"COMPLETED": "green", "FAILED": "red", "CANCELLED": "yellow"}.get(
        status.value, "white"
    )
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("job", job_name)
    table.add_row("status", f"[{colour}]{status.value}[/]")
    table.add_row("records read", f"{metrics.records_read:,}")
    table.add_row("records written", f"{metrics.records_written:,}")
    table.add_row("failed", f"{metrics.failed_records:,}")
    table.add_row("dropped", f"{metrics.dropped_records:,}")
    table.add_row("duration", f"{metrics.elapsed:.2f} s")
    table.add_row("throughput", f"{metrics.throughput:,.0f} records/s")
    out.print(table)
    if metrics.first_failure:
        err.print(
            f"[yellow]first failed record:[/] {metrics.first_failure}", markup=True, soft_wrap=True
        )
    if error:
        err.print(f"[bold red]error:[/] {error}", markup=True, soft_wrap=True)


def _start_retry(
    previous: _Recording, prepared: PreparedJob, plugins: Plugins, attempt: int
) -> _Recording:
    """A retry is a new execution (new id, so a file sink's part names never collide with
    the failed attempt's) that resumes from the job's newest completed checkpoint."""
    store = previous.store
    plugins.pm.unregister(name="execution-recorder")
    execution_id = uuid.uuid4().hex
    store.executions.create(
        prepared.job.name, execution_id, triggered_by="RETRY", retry_count=attempt
    )
    store.executions.transition(execution_id, ExecutionStatus.INITIALIZING)
    plugins.pm.register(
        ExecutionRecorder(store.executions, execution_id), name="execution-recorder"
    )
    checkpointing = attrs.evolve(
        previous.checkpointing,
        restore_from=store.checkpoints.latest_completed(prepared.job.name),
    )
    return _Recording(store, execution_id, previous.version, checkpointing)


def run(args: argparse.Namespace) -> int:
    try:
        plugins, prepared = _load(args.jobfile)
    except PipelineError as exc:
        print_error(exc)
        return EXIT_CONFIG
    show = not args.no_progress and err.is_terminal
    metrics = RunMetrics()
    try:
        recording = None if args.no_record else _start_recording(args, prepared, plugins)
    except PipelineError as exc:
        print_error(exc)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILED
    if not args.quiet:
        where = (
            f" (execution {recording.execution_id}, version {recording.version})"
            if recording
            else ""
        )
        restored = recording.checkpointing.restore_from if recording else None
        if restored is not None:
            err.print(
                f"resuming from checkpoint {restored.checkpoint_id} of execution "
                f"{restored.execution_id} at {restored.state_data.get('source_state')}",
                soft_wrap=True,
            )
        err.print(
            f"running [bold]{prepared.job.name}[/]{where}: {_describe(prepared)}", markup=True
        )
    cfg = prepared.job.config
    attempt = 0
    try:
        while True:
            result = asyncio.run(_run(prepared, plugins, metrics, show, recording))
            if not (
                recording is not None
                and result.status is ExecutionStatus.FAILED
                and attempt < cfg.max_retry_times
                and isinstance(result.exception, RetriableConnectorError | CheckpointError)
            ):
                break
            attempt += 1
            delay = cfg.retry_interval.total_seconds() * 2 ** (attempt - 1)
            err.print(
                f"[yellow]failed:[/] {result.error}; retry {attempt} of {cfg.max_retry_times} "
                f"in {delay:.1f} s, from the last checkpoint",
                markup=True,
                soft_wrap=True,
            )
            time.sleep(delay)
            recording = _start_retry(recording, prepared, plugins, attempt)
            metrics = RunMetrics()
    except KeyboardInterrupt:
        _summary(prepared.job.name, ExecutionStatus.CANCELLED, metrics, None)
        err.print("cancelled: no output was committed by the interrupted run", soft_wrap=True)
        return EXIT_CANCELLED
    _summary(prepared.job.name, result.status, metrics, result.error)
    for line in result.outputs:
        out.print(f"output: {line}", soft_wrap=True)
    if result.status is ExecutionStatus.FAILED and args.traceback and result.error_trace:
        err.print(result.error_trace, markup=False, highlight=False)
    return 0 if result.status is ExecutionStatus.COMPLETED else EXIT_FAILED


def validate(args: argparse.Namespace) -> int:
    try:
        _plugins, prepared = _load(args.jobfile)
    except PipelineError as exc:
        print_error(exc)
        return EXIT_CONFIG
    out.print(f"ok: job {prepared.job.name!r}: {_describe(prepared)}")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a job file in the foreground")
    p.add_argument("jobfile", help="a YAML or JSON job definition")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", "-q", action="store_true", help="only the summary")
    p.add_argument("--traceback", action="store_true", help="print the traceback of a failure")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the job's newest completed checkpoint (a fresh start if none)",
    )
    p.add_argument("--from-savepoint", metavar="NAME", help="continue from a named savepoint")
    p.add_argument(
        "--checkpoint-url",
        metavar="URL",
        help="checkpoint storage (default: $PIPELINE_CHECKPOINT_URL, else .pipeline/checkpoints)",
    )
    p.add_argument(
        "--no-record",
        action="store_true",
        help="do not register the job or record the execution in the metadata database",
    )
    p.set_defaults(func=run)
    v = sub.add_parser("validate", help="check a job file without running it")
    v.add_argument("jobfile")
    v.set_defaults(func=validate)
