"""``pipeline-run run JOBFILE``: a job in the foreground, with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

import attrs
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pipeline_core.checkpoint.identity import source_identity, verify_restore
from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.cli.output import err, out, print_error
from pipeline_core.cli.tables import print_json
from pipeline_core.cli.validate import describe, load_job
from pipeline_core.config.converter import parse_duration
from pipeline_core.errors import CheckpointError, ConfigError, PipelineError
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.control import ExecutionControl
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.prepare import PreparedJob
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.runtime.runner import execute

if TYPE_CHECKING:  # the store and the executor (SQLAlchemy, Alembic) load only to record
    from pipeline_core.store import MetadataStore
    from pipeline_core.store.executions import ExecutionRecord

__all__ = ["add_arguments"]

EXIT_FAILED, EXIT_CONFIG, EXIT_CANCELLED = 1, 2, 130


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
    # At 80 columns the default 40-cell bar leaves the counters cut off ("0:00:…"):
    # the bar takes what the text leaves, and the time remaining goes first.
    wide = err.width >= 110
    columns: list[Any] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=max(10, min(40, err.width - 76))),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[records]} records"),
        TextColumn("{task.fields[rate]} rec/s"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
    ]
    if wide:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=err, transient=False)


#: after a second signal, the seconds a run may take to stop before the process exits
_HARD_EXIT_AFTER = 5.0


class _Signals:
    """SIGINT and SIGTERM, installed explicitly (a parent that ignored SIGINT — a script
    running us in the background — must not make Ctrl-C semantics disappear). The first
    signal takes a checkpoint and stops (CANCELLED); a second one stops at once, still
    committing nothing more."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.count = 0
        self.stop: Any = None  # first signal
        self.abort: Any = None  # second signal

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def settle(self) -> None:
        """After the event loop: a late signal must not kill the process while it prints
        the summary (asyncio puts the default handlers back)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, _frame: self._note(signum))

    def _note(self, sig: int) -> None:
        self.count += 1
        if self.received is None:
            self.received = sig

    def _on_signal(self, sig: int) -> None:
        self.count += 1
        if self.received is None:
            self.received = sig
        name = signal.Signals(sig).name
        if self.count == 1:
            err.print(
                f"{name}: taking a checkpoint and stopping (again to stop at once)",
                soft_wrap=True,
            )
            if self.stop is not None:
                self.stop()
        elif self.count == 2:
            err.print(f"{name}: stopping now, committing nothing more", soft_wrap=True)
            if self.abort is not None:
                self.abort()
            # a step that blocks the event loop cannot see the cancellation: leave anyway
            # (unfinished parts are never published; --resume continues the execution)
            timer = threading.Timer(_HARD_EXIT_AFTER, self._hard_exit)
            timer.daemon = True
            timer.start()
        else:
            self._hard_exit()

    def _hard_exit(self) -> None:
        err.print("exiting without cleanup; `--resume` continues the execution", soft_wrap=True)
        os._exit(self.exit_code)

    @property
    def exit_code(self) -> int:
        return 128 + self.received if self.received is not None else EXIT_CANCELLED


async def _run(
    prepared: PreparedJob,
    plugins: Plugins,
    metrics: RunMetrics,
    show_progress: bool,
    recording: _Recording | None,
    signals: _Signals,
) -> tuple[JobResult | None, RunMetrics]:
    """Execute, refreshing the progress bar meanwhile. A recorded run goes through the
    JobExecutor (lease and heartbeats, attempts, retries from the last checkpoint) like a
    run in ``pipeline-run serve``, but in this process; ``--no-record`` runs the runtime
    directly. Returns the result and the counters of the last attempt."""
    signals.install(asyncio.get_running_loop())
    progress = _progress_bar() if show_progress else None
    task = (
        progress.add_task(prepared.job.name, total=None, records="0", rate="0", failed=0)
        if progress
        else None
    )
    executor = None
    control = ExecutionControl()
    runner: asyncio.Task[Any] | None = None
    if recording is not None:
        from pipeline_core.service.executor import JobExecutor

        executor = JobExecutor(
            recording.store,
            plugins,
            instance=recording.record.owner_instance,
            checkpoint_url=recording.checkpoint_url,
            lease=recording.lease,
            workers=False,
        )
        await executor.start(claim=False)
    last = [metrics]

    def current() -> RunMetrics:
        h = executor.running.get(recording.execution_id) if executor and recording else None
        if h is not None:
            last[0] = h.metrics
        return last[0]

    def stop() -> None:
        h = executor.running.get(recording.execution_id) if executor and recording else None
        if h is not None:
            h.cancel_requested = True
            h.stop_at_checkpoint()
        elif runner is not None:
            runner.cancel()  # no checkpoints without a metadata database: commit nothing

    def abort() -> None:
        h = executor.running.get(recording.execution_id) if executor and recording else None
        if h is not None:
            h.cancel_requested = True
            h.abort()
        elif runner is not None:
            runner.cancel()

    signals.stop, signals.abort = stop, abort

    async def ticker() -> None:
        while True:
            counters = current()  # also keeps the last attempt's counters for the summary
            if progress is not None and task is not None:
                _refresh(progress, task, counters)
            await asyncio.sleep(0.2)

    with progress if progress is not None else contextlib.nullcontext():
        tick = asyncio.create_task(ticker())
        try:
            if executor is not None and recording is not None:
                runner = asyncio.create_task(
                    executor.run_here(
                        recording.record,
                        prepared.job,
                        restore_from=recording.restore_from,
                        metrics=metrics,
                        prepared=prepared,
                    )
                )
            else:
                runner = asyncio.create_task(
                    execute(prepared, plugins, metrics=metrics, control=control)
                )
            try:
                return await runner, current()
            except asyncio.CancelledError:
                if signals.received is None:
                    raise
                return None, current()
        finally:
            tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tick
            if progress is not None and task is not None:
                _refresh(progress, task, current())
            if executor is not None:
                await executor.stop(graceful=False)


@attrs.define
class _Recording:
    store: MetadataStore
    record: ExecutionRecord
    version: int
    checkpoint_url: str | None
    restore_from: CheckpointInfo | None
    lease: dt.timedelta
    continued: bool
    superseded: list[str]

    @property
    def execution_id(self) -> str:
        return self.record.execution_id


def _start_recording(args: argparse.Namespace, prepared: PreparedJob) -> _Recording:
    """Register (or version) the job file, then take ownership of its execution: the one
    ``--resume`` continues, or a new one — superseding the job's dead executions in the
    same transaction, so that no ``serve`` ever runs them again."""
    from pipeline_core.store import MetadataStore
    from pipeline_core.store.executions import instance_name

    store = MetadataStore.open(args.database)
    lease = parse_duration(args.lease)
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
    if restore_from is not None:  # refused before anything is recorded (runner checks too)
        identity = source_identity(prepared.make_source(), prepared.job.name)
        verify_restore(restore_from, identity, chosen_by_framework=False)
    definition, _outcome = store.registry.register_or_update(prepared.job)
    claim = store.ownership.open_run(
        prepared.job.name,
        instance_name(),
        lease,
        resume_execution=restore_from.execution_id if restore_from else None,
        resume_checkpoint=restore_from.checkpoint_id if restore_from else None,
        continue_execution=bool(args.resume),
    )
    return _Recording(
        store,
        claim.record,
        definition.version,
        args.checkpoint_url,
        restore_from,
        lease,
        claim.continued,
        claim.superseded,
    )


def _summary_data(
    job_name: str,
    status: ExecutionStatus,
    metrics: RunMetrics,
    error: str | None,
    recording: _Recording | None,
    result: JobResult | None,
) -> dict[str, Any]:
    """What the summary says, as data: the table and ``--json`` print the same.

    The duration is the execution record's (``duration_ms``: start to end as recorded,
    what ``executions`` shows) when the run is recorded and ended; else the run's own
    clock. Throughput is the records read over that duration."""
    seconds = metrics.elapsed
    if recording is not None:
        recorded = recording.store.executions.get(recording.execution_id).duration_ms
        if recorded is not None:
            seconds = recorded / 1000
    data: dict[str, Any] = {
        "job": job_name,
        "execution_id": recording.execution_id if recording else None,
        "version": recording.version if recording else None,
        "status": status.value,
        "records_read": metrics.records_read,
        "records_written": metrics.records_written,
        "failed_records": metrics.failed_records,
        "dropped_records": metrics.dropped_records,
        "duration_s": round(seconds, 3),
        "throughput": round(metrics.records_read / seconds if seconds > 0 else 0.0, 1),
    }
    if metrics.before:
        data["execution_totals"] = {
            "records_read": metrics.total_read,
            "records_written": metrics.total_written,
            "failed_records": metrics.total_failed,
        }
    # Paths under the working directory as the user would type them. Only on the
    # redacted lines: shortening a path before a secret is put back would leave a part
    # of the secret that no longer matches it.
    here = os.path.join(os.getcwd(), "")
    data["outputs"] = [o.replace(here, "") for o in result.outputs] if result else []
    data["checkpoints"] = list(result.checkpoints) if result is not None else []
    data["first_failure"] = metrics.first_failure
    data["error"] = error
    return data


def _as_recorded(recording: _Recording) -> dict[str, int]:
    """A stopped run's counts as the execution record and the output have them: read and
    failed from the record (what ``executions`` shows), written from the last completed
    checkpoint of the execution (what was committed; the rest was discarded)."""
    store = recording.store
    record = store.executions.get(recording.execution_id)
    last = store.checkpoints.latest_completed_of_execution(recording.execution_id)
    counts = last.state_data.get("counts", {}) if last is not None else {}
    before = recording.restore_from.state_data.get("counts", {}) if recording.restore_from else {}
    return {
        "records_read": record.processed_records - before.get("records_read", 0),
        "records_written": counts.get("records_written", 0) - before.get("records_written", 0),
        "failed_records": record.failed_records - before.get("failed_records", 0),
    }


def _summary(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    status = data["status"]
    colour = {"COMPLETED": "green", "FAILED": "red", "CANCELLED": "yellow"}.get(status, "white")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("job", data["job"])
    table.add_row("status", f"[{colour}]{status}[/]")
    table.add_row("records read", f"{data['records_read']:,}")
    table.add_row("records written", f"{data['records_written']:,}")
    table.add_row("failed", f"{data['failed_records']:,}")
    totals = data.get("execution_totals")
    if totals:
        table.add_row(
            "execution totals",
            f"{totals['records_read']:,} read, {totals['records_written']:,} written "
            "(earlier attempts included)",
        )
    table.add_row("dropped", f"{data['dropped_records']:,}")
    table.add_row("duration", f"{data['duration_s']:.2f} s")
    table.add_row("throughput", f"{data['throughput']:,.0f} records/s")
    out.print(table)
    if data["first_failure"]:
        err.print(
            f"[yellow]first failed record:[/] {escape(data['first_failure'])}",
            markup=True,
            soft_wrap=True,
        )
    if data["error"]:
        err.print(f"[bold red]error:[/] {escape(data['error'])}", markup=True, soft_wrap=True)
    for line in data["outputs"]:
        out.print(f"output: {line}", soft_wrap=True)


def run(args: argparse.Namespace) -> int:
    try:
        plugins, prepared = load_job(args.jobfile, run=True)
    except PipelineError as exc:
        print_error(exc)
        return EXIT_CONFIG
    show = not args.no_progress and err.is_terminal
    metrics = RunMetrics()
    try:
        recording = None if args.no_record else _start_recording(args, prepared)
    except PipelineError as exc:
        print_error(exc)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILED
    if not args.quiet:
        _announce(prepared, recording)
    pushgateway = args.pushgateway or os.environ.get("PIPELINE_PUSHGATEWAY_URL")
    prom = None
    if pushgateway:
        from pipeline_core.api.metrics import PipelineMetrics

        prom = PipelineMetrics()
        plugins.pm.register(prom, name="metrics")
    signals = _Signals()
    try:
        result, final = asyncio.run(_run(prepared, plugins, metrics, show, recording, signals))
    except KeyboardInterrupt:  # only before our handlers are installed
        _summary(
            _summary_data(
                prepared.job.name, ExecutionStatus.CANCELLED, metrics, None, recording, None
            ),
            args.json,
        )
        return EXIT_CANCELLED
    finally:
        signals.settle()
    if result is None or result.status is ExecutionStatus.CANCELLED:
        data = _summary_data(
            prepared.job.name, ExecutionStatus.CANCELLED, final, None, recording, result
        )
        if recording is not None:
            data.update(_as_recorded(recording))
        _summary(data, args.json)
        last = result.checkpoints[-1] if result is not None and result.checkpoints else None
        if last is not None:
            err.print(
                f"stopped after checkpoint {last}: output up to it is committed; "
                f"`pipeline-run run {args.jobfile} --resume` continues from there",
                soft_wrap=True,
            )
        elif recording is not None:
            err.print(
                "stopped at once: nothing after the last completed checkpoint was committed; "
                f"`pipeline-run run {args.jobfile} --resume` continues from it",
                soft_wrap=True,
            )
        else:
            err.print("cancelled: no output was committed by the interrupted run", soft_wrap=True)
        return signals.exit_code
    if prom is not None and pushgateway:
        _push(pushgateway, prepared.job.name, prom)
    if recording is not None:
        record = recording.store.executions.get(recording.execution_id)
        if record.retry_count:
            err.print(f"retried {record.retry_count} time(s), each from the last checkpoint")
    _summary(
        _summary_data(prepared.job.name, result.status, final, result.error, recording, result),
        args.json,
    )
    if result.status is ExecutionStatus.FAILED and args.traceback and result.error_trace:
        err.print(result.error_trace, markup=False, highlight=False)
    return 0 if result.status is ExecutionStatus.COMPLETED else EXIT_FAILED


def _announce(prepared: PreparedJob, recording: _Recording | None) -> None:
    where = (
        f" (execution {recording.execution_id}, version {recording.version})" if recording else ""
    )
    if recording is not None:
        if recording.superseded:
            err.print(
                f"closed {len(recording.superseded)} dead execution(s) of this job as "
                f"superseded: {', '.join(recording.superseded)}",
                soft_wrap=True,
            )
        restored = recording.restore_from
        if restored is None and recording.continued:
            err.print(
                f"continuing execution {recording.execution_id} from the start "
                "(it was stopped before its first checkpoint)",
                soft_wrap=True,
            )
        if restored is not None:
            how = "continuing execution" if recording.continued else "resuming from execution"
            what = "savepoint" if restored.is_savepoint else "checkpoint"
            err.print(
                f"{how} {restored.execution_id} at {what} {restored.checkpoint_id} "
                f"({restored.storage_path}): {restored.state_data.get('source_state')}",
                soft_wrap=True,
            )
    err.print(f"running [bold]{prepared.job.name}[/]{where}: {describe(prepared)}", markup=True)


def _push(url: str, job_name: str, prom: Any) -> None:
    """Batch jobs end before Prometheus would scrape them: push their metrics instead."""
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(
            url, job="pipeline-run", grouping_key={"job_name": job_name}, registry=prom.registry
        )
    except OSError as exc:
        failed = escape(f"pushing metrics to {url} failed: {exc}")
        err.print(f"[yellow]warning:[/] {failed}", markup=True)
    else:
        err.print(f"metrics pushed to {url}", soft_wrap=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Run a job file in the foreground. A new execution starts from the "
        "beginning of its input — except a STREAMING job, which continues from the job's "
        "newest checkpoint (its offsets and state) when that was taken from the same source, "
        "and starts fresh when the source changed since. --resume continues the killed "
        "execution itself."
    )
    p.add_argument("jobfile", help="a YAML or JSON job definition")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", "-q", action="store_true", help="only the summary")
    p.add_argument("--traceback", action="store_true", help="print the traceback of a failure")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the job's newest completed checkpoint (a fresh start if none; "
        "refused if the job's source changed since)",
    )
    p.add_argument("--from-savepoint", metavar="NAME", help="continue from a named savepoint")
    p.add_argument(
        "--checkpoint-url",
        metavar="URL",
        help="checkpoint storage (default: $PIPELINE_CHECKPOINT_URL, else .pipeline/checkpoints)",
    )
    p.add_argument(
        "--pushgateway",
        metavar="URL",
        help="push the run's metrics to a Prometheus Pushgateway at the end "
        "(default: $PIPELINE_PUSHGATEWAY_URL)",
    )
    p.add_argument(
        "--lease",
        default="15s",
        help="an execution whose owner has not heart-beaten for this long is dead and may "
        "be continued or superseded (default 15s; the same as serve's)",
    )
    p.add_argument(
        "--no-record",
        action="store_true",
        help="do not register the job or record the execution in the metadata database",
    )
    p.set_defaults(func=run)
