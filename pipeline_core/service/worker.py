"""Worker processes: where ``serve`` runs user code.

Each attempt of an execution runs in a child process (started from a fork server that
has the runtime imported, so a start costs milliseconds, not an interpreter start-up).
The child prepares the job, runs it, and talks to its owner — the ``serve`` process —
over one pipe:

- child → owner: listener events (``job_started``, ``checkpoint_*``), progress counters
  (ten times a second, and after each control message), the execution's log lines (a
  batch a second at most, bounded: :mod:`pipeline_core.service.logs`; the owner's
  journal writes them), calls to the checkpoint
  repository (answered by the owner's
  :class:`~pipeline_core.service.journal.FencedCheckpoints`, so a worker whose owner
  lost the execution cannot complete a checkpoint), and the result;
- owner → child: control (pause, resume, checkpoint, stop at a checkpoint, cancel).

The child resolves the job's secret references; everything it sends — errors, checkpoint
metadata, progress — is redacted before it crosses the pipe (the owner never learns a
value, so it could not redact it). The child never opens the metadata database. It dies
with its owner: the kernel kills it when the fork server exits (``PR_SET_PDEATHSIG``),
and it exits at once when the pipe to the owner closes. A child that dies (SIGKILL,
segfault, ``os._exit``, out of memory) ends its attempt as a retriable failure; the owner
retries it from its last checkpoint per the job's retry policy.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

import attrs

from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.config.secrets import redact
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.runtime.retry import RemoteFailure
from pipeline_core.service.logs import LogSettings

__all__ = ["WorkerProcess", "WorkerSpec", "warm_up"]

log = logging.getLogger("pipeline_core.executor")

#: Counters the child sends to its owner (RunMetrics attributes).
_PROGRESS = (
    "records_read",
    "records_processed",
    "records_written",
    "failed_records",
    "dropped_records",
    "batches_read",
    "buffered_records",
    "buffered_batches",
    "buffer_capacity_batches",
    "first_failure",
    "before",
)
_PROGRESS_INTERVAL = 0.1


@attrs.frozen(kw_only=True)
class WorkerSpec:
    """Everything a worker needs to run one attempt (picklable, no user code)."""

    execution_id: str
    run_id: str
    job_name: str
    dag: dict[str, Any]
    base_dir: str | None
    restore_from: CheckpointInfo | None
    first_checkpoint_id: int
    checkpoint_url: str | None
    #: see Checkpointing.restore_chosen_by_framework
    restore_chosen_by_framework: bool = False
    #: plugin modules registered in the owner beside the entry points (tests, embedders)
    extra_plugins: tuple[str, ...] = ()
    #: which log lines the child keeps and sends
    logs: LogSettings = attrs.field(factory=LogSettings)
    cwd: str = attrs.field(factory=os.getcwd)
    env: dict[str, str] = attrs.field(factory=lambda: dict(os.environ))
    sys_path: tuple[str, ...] = attrs.field(factory=lambda: tuple(sys.path))


# --- the owner's side -------------------------------------------------------------------


_context: Any = None


def _mp_context() -> Any:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(
            ["pipeline_core.service.worker", "pipeline_core.service._preload"]
        )
        _context = ctx
    return _context


def warm_up() -> None:
    """Start the fork server now (it imports the runtime and discovers the plugins, about
    half a second) rather than at the first execution. Blocking: call it in a thread."""
    from multiprocessing import forkserver

    _mp_context()
    forkserver.ensure_running()


class WorkerProcess:
    """One attempt running in a child process, seen from its owner.

    ``listener`` (an ExecutionJournal) and ``checkpoints`` (FencedCheckpoints) are called
    on this handle's reader thread, in the order the child sent its messages."""

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        listener: Any,
        checkpoints: Any,
        metrics: RunMetrics,
    ) -> None:
        self.spec = spec
        self.listener = listener
        self.checkpoints = checkpoints
        self.metrics = metrics
        self._result: JobResult | None = None
        self._reported = False
        self._retriable = True
        self._send_lock = threading.Lock()
        self._done: asyncio.Future[JobResult | None] | None = None
        self.process: Any = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        """Fork the worker (off the event loop: the first one starts the fork server)."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        await asyncio.to_thread(self._spawn)
        threading.Thread(
            target=self._read,
            args=(loop,),
            name=f"worker-reader:{self.spec.execution_id[:8]}",
            daemon=True,
        ).start()

    def _spawn(self) -> None:
        ctx = _mp_context()
        parent, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_child_main,
            args=(child, self.spec),
            name=f"pipeline-worker:{self.spec.job_name}:{self.spec.execution_id[:8]}",
            daemon=False,
        )
        self.process.start()
        child.close()
        self._conn = parent

    def _send(self, message: tuple[Any, ...]) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            with self._send_lock:
                conn.send(message)
        except (OSError, EOFError, ValueError):
            pass  # the child is gone; the reader thread reports it

    def control(self, action: str, arg: Any = None) -> None:
        """pause | resume | checkpoint (arg: savepoint name) | stop | cancel."""
        self._send(("control", action, arg))

    def kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)

    async def wait(self) -> JobResult | None:
        assert self._done is not None
        return await asyncio.shield(self._done)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        conn = self._conn
        assert conn is not None
        try:
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    break
                kind = message[0]
                if kind == "event":
                    _, name, args = message
                    getattr(self.listener, name)(*args)
                elif kind == "progress":
                    self._progress(message[1])
                elif kind == "logs":
                    log_lines = getattr(self.listener, "log_lines", None)
                    if log_lines is not None:
                        log_lines(message[1])
                elif kind == "call":
                    _, call_id, name, args, kwargs = message
                    try:
                        value = getattr(self.checkpoints, name)(*args, **kwargs)
                        reply: tuple[Any, ...] = ("reply", call_id, True, value)
                    except Exception as exc:
                        reply = ("reply", call_id, False, f"{type(exc).__name__}: {exc}")
                    self._send(reply)
                elif kind == "result":
                    _, result, retriable, progress = message
                    self._progress(progress)
                    self._result, self._retriable, self._reported = result, retriable, True
        finally:
            self.process.join()
            code = self.process.exitcode
            self._conn = None
            conn.close()
            outcome = self._outcome(code)
            loop.call_soon_threadsafe(_settle, self._done, outcome)

    def _progress(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            setattr(self.metrics, key, value)

    def _outcome(self, exitcode: int | None) -> JobResult | None:
        if self._reported and self._result is None:
            return None  # the child's run was cancelled
        if self._result is not None:
            if self._result.status is ExecutionStatus.FAILED:
                return attrs.evolve(
                    self._result,
                    exception=RemoteFailure(
                        self._result.error or "failed", retriable=self._retriable
                    ),
                )
            return self._result
        how = (
            f"signal {-exitcode} ({signal.Signals(-exitcode).name})"
            if exitcode is not None and exitcode < 0
            else f"exit code {exitcode}"
        )
        message = f"the worker process {self.process.pid} died ({how})"
        m = self.metrics
        return JobResult(
            job_name=self.spec.job_name,
            execution_id=self.spec.execution_id,
            status=ExecutionStatus.FAILED,
            records_read=m.records_read,
            records_written=m.records_written,
            failed_records=m.failed_records,
            dropped_records=m.dropped_records,
            duration_s=m.elapsed,
            error=message,
            exception=RemoteFailure(message, retriable=True),
        )


def _settle(future: asyncio.Future[Any] | None, value: Any) -> None:
    if future is not None and not future.done():
        future.set_result(value)


# --- the child's side -------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent (the fork server) exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Channel:
    """The child's end of the pipe: sends, and a reader thread for replies and control."""

    def __init__(self, conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
        self.conn = conn
        self.loop = loop
        self._lock = threading.Lock()
        self._calls: dict[int, Future[Any]] = {}
        self._next = 0
        self.on_control: Callable[[str, Any], None] = lambda action, arg: None
        threading.Thread(target=self._read, name="owner-reader", daemon=True).start()

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            with self._lock:
                self.conn.send(message)
        except (OSError, EOFError, ValueError):
            os._exit(70)  # the owner is gone: nothing of this run may go on

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A blocking call to the owner's checkpoint repository (from a worker thread)."""
        future: Future[Any] = Future()
        with self._lock:
            self._next += 1
            call_id = self._next
            self._calls[call_id] = future
        self.send(("call", call_id, name, args, kwargs))
        return future.result()

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                os._exit(70)  # the owner died or gave the execution up
            if message[0] == "reply":
                _, call_id, ok, value = message
                future = self._calls.pop(call_id)
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(RemoteCallError(value))
            elif message[0] == "control":
                _, action, arg = message
                self.loop.call_soon_threadsafe(self.on_control, action, arg)


class RemoteCallError(Exception):
    """The owner refused or failed a checkpoint repository call."""


class _RemoteCheckpoints:
    """The checkpoint repository as the child sees it: every call goes to the owner."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel

    def begin(self, **kwargs: Any) -> None:
        self.channel.call("begin", **kwargs)

    def complete(self, **kwargs: Any) -> None:
        self.channel.call("complete", **kwargs)

    def fail(self, **kwargs: Any) -> None:
        self.channel.call("fail", **kwargs)

    def delete(self, info: CheckpointInfo) -> None:
        self.channel.call("delete", info)

    def latest_completed(self, job_name: str) -> CheckpointInfo | None:
        return self.channel.call("latest_completed", job_name)

    def savepoint(self, job_name: str, name: str) -> CheckpointInfo | None:
        return self.channel.call("savepoint", job_name, name)

    def list(self, job_name: str) -> list[CheckpointInfo]:
        return self.channel.call("list", job_name)

    def take_request(self, execution_id: str) -> str | None:
        return self.channel.call("take_request", execution_id)


class _Forwarder:
    """The child's RunListener: every event goes to the owner, in order."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel

    def _event(self, name: str, *args: Any) -> None:
        self.channel.send(("event", name, args))

    def job_started(self) -> None:
        self._event("job_started")

    def checkpoint_started(self, checkpoint_id: int) -> None:
        self._event("checkpoint_started", checkpoint_id)

    def checkpoint_completed(self, checkpoint_id: int, state: dict[str, Any]) -> None:
        self._event("checkpoint_completed", checkpoint_id, state)

    def checkpoint_failed(self, checkpoint_id: int, error: BaseException) -> None:
        failure = RemoteFailure(redact(str(error)), retriable=True)  # redacted before the pipe
        self._event("checkpoint_failed", checkpoint_id, failure)

    def job_ended(self, result: JobResult) -> None:
        pass  # the result message follows


def _snapshot(metrics: RunMetrics) -> dict[str, Any]:
    return {key: getattr(metrics, key) for key in _PROGRESS}


def _child_main(conn: Connection, spec: WorkerSpec) -> None:
    _die_with_parent()
    os.chdir(spec.cwd)
    os.environ.clear()
    os.environ.update(spec.env)
    sys.path[:] = list(spec.sys_path)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is for the owner
    asyncio.run(_child(conn, spec))
    conn.close()


async def _child(conn: Connection, spec: WorkerSpec) -> None:
    from pipeline_core.checkpoint.storage import CheckpointStorage
    from pipeline_core.errors import PipelineError
    from pipeline_core.model.loader import job_from_dict
    from pipeline_core.plugins.manager import load_plugins
    from pipeline_core.runtime.control import ExecutionControl
    from pipeline_core.runtime.prepare import prepare
    from pipeline_core.runtime.retry import is_retriable
    from pipeline_core.runtime.runner import Checkpointing, execute
    from pipeline_core.service.logs import LogBuffer, LogShipper, capture_process

    loop = asyncio.get_running_loop()
    channel = _Channel(conn, loop)
    shipper: LogShipper | None = None
    if spec.logs.enabled:
        buffer = LogBuffer(spec.logs)
        capture_process(buffer)
        shipper = LogShipper(buffer, lambda lines: channel.send(("logs", lines))).start()

    async def send_result(message: tuple[Any, ...]) -> None:
        if shipper is not None:  # the last lines go before the result
            await shipper.close()
        channel.send(message)

    metrics = RunMetrics()
    control = ExecutionControl()
    task: asyncio.Task[JobResult] | None = None

    def on_control(action: str, arg: Any) -> None:
        if action == "pause":
            control.pause()
        elif action == "resume":
            control.resume()
        elif action == "checkpoint":
            control.checkpoint(arg)
        elif action == "stop":
            if not control.stop_at_checkpoint() and task is not None:
                task.cancel()
        elif action == "cancel" and task is not None:
            task.cancel()
        channel.send(("progress", _snapshot(metrics)))

    channel.on_control = on_control
    loop.add_signal_handler(signal.SIGTERM, on_control, "stop", None)

    async def fail(exc: BaseException, retriable: bool) -> None:
        result = JobResult.not_started(spec.job_name, spec.execution_id, exc, keep=False)
        await send_result(("result", result, retriable, _snapshot(metrics)))

    try:
        from pipeline_core.service import _preload

        if _preload.PLUGINS is not None and not spec.extra_plugins:
            plugins = _preload.PLUGINS
        else:
            extra = [importlib.import_module(name) for name in spec.extra_plugins]
            plugins = load_plugins(extra=extra)
        job = job_from_dict(spec.dag, base_dir=spec.base_dir, origin=spec.job_name)
        prepared = prepare(job, plugins, resolve_secrets=True)
    except PipelineError as exc:
        await fail(exc, is_retriable(exc))
        return
    except Exception as exc:
        await fail(exc, False)
        return

    async def report() -> None:
        while True:
            await asyncio.sleep(_PROGRESS_INTERVAL)
            channel.send(("progress", _snapshot(metrics)))

    reporter = asyncio.create_task(report())
    task = asyncio.create_task(
        execute(
            prepared,
            plugins,
            execution_id=spec.execution_id,
            run_id=spec.run_id,
            metrics=metrics,
            checkpointing=Checkpointing(
                repository=_RemoteCheckpoints(channel),
                storage=CheckpointStorage(spec.checkpoint_url),
                restore_from=spec.restore_from,
                first_checkpoint_id=spec.first_checkpoint_id,
                restore_chosen_by_framework=spec.restore_chosen_by_framework,
            ),
            control=control,
            listener=_Forwarder(channel),
        )
    )
    try:
        result: JobResult | None = await task
    except asyncio.CancelledError:
        result = None
    reporter.cancel()
    if result is None:
        await send_result(("result", None, False, _snapshot(metrics)))
        return
    retriable = is_retriable(result.exception)
    await send_result(
        ("result", attrs.evolve(result, exception=None), retriable, _snapshot(metrics))
    )
