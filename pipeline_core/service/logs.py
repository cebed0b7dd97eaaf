"""Capturing an execution's log lines where its code runs, bounded, for its journal.

The process that runs an attempt — a ``serve`` worker, or a foreground ``pipeline-run
run`` — hands every ``logging`` record of the execution (its own, the runtime's, the
connectors' and libraries') at or above :attr:`LogSettings.level` to a
:class:`LogBuffer`. A :class:`LogShipper` takes what the buffer holds once per
:attr:`LogSettings.interval` and passes it on as one batch: a worker sends it over its
pipe, the owner's :class:`~pipeline_core.service.journal.ExecutionJournal` queues one
write of it on the journal thread. So the database sees at most one write per execution
and interval, whatever the job logs.

The bound: the buffer keeps at most ``rate * interval`` records per interval, the newest
(a deque: appending is all a log call costs; only the kept records are ever formatted),
and says how many it dropped in a line after them; the store keeps the newest
:attr:`LogSettings.lines` per execution and cuts a line at ``line_chars`` characters. A
job that logs every record therefore costs an append per call and a few hundred rows a
second at most.

Secrets: a line is formatted when it is taken, and :func:`~pipeline_core.config.secrets.redact`
is applied to the whole formatted text (message, traceback, stack) then — so a record
made before a secret was resolved, which the log-record factory could not redact, is
redacted all the same; the journal redacts once more for what the owner resolved.

Which execution a record belongs to: a process-wide handler on the root logger looks at a
context variable set by the execution's supervisor task (tasks and ``to_thread`` calls it
starts inherit it); a worker process, which runs one attempt, takes every record of the
process (:func:`capture_process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator

import attrs

from pipeline_core.config.secrets import redact

__all__ = [
    "LEVEL_ENV",
    "LINES_ENV",
    "RATE_ENV",
    "LogBuffer",
    "LogLine",
    "LogSettings",
    "LogShipper",
    "capture_here",
    "capture_process",
    "let_through",
]


LINES_ENV = "PIPELINE_EXECUTION_LOG_LINES"
RATE_ENV = "PIPELINE_EXECUTION_LOG_RATE"
LEVEL_ENV = "PIPELINE_EXECUTION_LOG_LEVEL"

log = logging.getLogger("pipeline_core.executor")

#: (time in UTC without tzinfo, level name, logger name, message): what travels from the
#: process that ran the code to the journal (a tuple: cheap to pickle over a worker's
#: pipe); :meth:`~pipeline_core.store.logs.LogStore.append` stores a batch of them
LogLine = tuple[dt.datetime, str, str, str]


def _env_int(name: str, default: int, low: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        log.warning("%s=%r is not a number: using %d", name, raw, default)
        return default
    return max(low, value)


def _env_level(default: int) -> int:
    raw = os.environ.get(LEVEL_ENV, "").strip().upper()
    if not raw:
        return default
    value = logging.getLevelName(raw)
    if not isinstance(value, int):
        log.warning("%s=%r is not a log level: using %s", LEVEL_ENV, raw, "INFO")
        return default
    return value


@attrs.frozen(kw_only=True)
class LogSettings:
    """How many of an execution's log lines are kept, and how fast they may come."""

    #: lines kept per execution in the metadata database (the newest); 0: none captured
    lines: int = 500
    #: records taken per second and execution at most (the newest of each interval)
    rate: int = 100
    #: records below this level are not kept
    level: int = logging.INFO
    #: a longer line (a traceback included) is cut here
    line_chars: int = 4000
    #: seconds between two batches of one execution
    interval: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.lines > 0 and self.rate > 0

    @property
    def per_batch(self) -> int:
        return max(1, round(self.rate * self.interval))

    @classmethod
    def from_env(cls) -> LogSettings:
        """``PIPELINE_EXECUTION_LOG_LINES`` (default 500, 0 turns capture off),
        ``PIPELINE_EXECUTION_LOG_RATE`` (lines a second, default 100) and
        ``PIPELINE_EXECUTION_LOG_LEVEL`` (default INFO)."""
        d = cls()
        return cls(
            lines=_env_int(LINES_ENV, d.lines, 0),
            rate=_env_int(RATE_ENV, d.rate, 0),
            level=_env_level(d.level),
        )


def _text(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception as exc:  # a bad format string: say so rather than lose the line
        text = f"{record.msg!r} (unformattable: {type(exc).__name__})"
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        text = f"{text}\n{record.exc_text}"
    if record.stack_info:
        text = f"{text}\n{record.stack_info}"
    return text


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _time(created: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(created, dt.UTC).replace(tzinfo=None)


class LogBuffer:
    """The records of one execution since the last batch: the newest ``per_batch``."""

    def __init__(self, settings: LogSettings) -> None:
        self.settings = settings
        self.level = settings.level
        self._records: deque[logging.LogRecord] = deque(maxlen=settings.per_batch)
        self._dropped = 0
        self._lock = threading.Lock()

    def add(self, record: logging.LogRecord) -> None:
        with self._lock:
            if len(self._records) == self._records.maxlen:
                self._dropped += 1
            self._records.append(record)

    def take(self) -> list[LogLine]:
        """Everything kept since the last call, formatted and redacted, oldest first."""
        with self._lock:
            records, dropped = list(self._records), self._dropped
            self._records.clear()
            self._dropped = 0
        limit = self.settings.line_chars
        lines: list[LogLine] = [
            # redacted before it is cut, so that no secret is cut in two and missed
            (_time(r.created), r.levelname, r.name, _cut(redact(_text(r)), limit))
            for r in records
        ]
        if dropped:  # last, where a reader of the tail looks (and a trimmed tail keeps it)
            lines.append(
                (
                    _time(records[-1].created),
                    "WARNING",
                    "pipeline_core.logs",
                    f"{dropped:,} earlier log line{'s' * (dropped != 1)} not kept: more "
                    f"than {self.settings.rate:,} a second (the newest are above)",
                )
            )
        return lines


class LogShipper:
    """Takes a buffer's lines once per interval and hands them to ``ship`` (on the event
    loop; ``ship`` must not block). :meth:`close` ships what is left."""

    def __init__(self, buffer: LogBuffer, ship: Callable[[list[LogLine]], None]) -> None:
        self.buffer = buffer
        self.ship = ship
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LogShipper:
        self._task = asyncio.create_task(self._run(), name="log-shipper")
        return self

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.buffer.settings.interval)
            self.flush()

    def flush(self) -> None:
        try:
            lines = self.buffer.take()
            if lines:
                self.ship(lines)
        except Exception:  # never let logging break a run
            log.debug("shipping log lines failed", exc_info=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()


# --- the handler -----------------------------------------------------------------------

_current: contextvars.ContextVar[LogBuffer | None] = contextvars.ContextVar(
    "pipeline_execution_log", default=None
)


class _Capture(logging.Handler):
    """On the root logger: a record goes to the buffer of the execution whose context it
    was made in (else to the process's own, in a worker)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.process_buffer: LogBuffer | None = None
        self.users = 0

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: the buffer has one
        buffer = _current.get() or self.process_buffer
        if buffer is not None and record.levelno >= buffer.level:
            buffer.add(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.handle(record)


_handler = _Capture()
_install_lock = threading.Lock()


def _install() -> None:
    with _install_lock:
        _handler.users += 1
        if _handler.users == 1:
            logging.getLogger().addHandler(_handler)


def _uninstall() -> None:
    with _install_lock:
        _handler.users -= 1
        if _handler.users == 0:
            logging.getLogger().removeHandler(_handler)


@contextlib.contextmanager
def capture_here(buffer: LogBuffer | None) -> Iterator[None]:
    """Records made in this context (the current task, the tasks and ``to_thread`` calls
    it starts) go to ``buffer`` while the block runs. What reaches the handler is what
    the process's logging levels let through (a foreground run lowers the root level to
    the capture level and keeps its console at its own: see the CLI)."""
    if buffer is None:
        yield
        return
    _install()
    token = _current.set(buffer)
    try:
        yield
    finally:
        _current.reset(token)
        _uninstall()


def capture_process(buffer: LogBuffer) -> None:
    """A worker process: every record of the process at or above the capture level goes
    to ``buffer``. Its console (stderr, which ``serve`` passes on) keeps showing warnings
    and worse, as it did before any handler was configured."""
    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    root.setLevel(min(root.getEffectiveLevel(), buffer.level))
    _handler.process_buffer = buffer
    _install()


def let_through(level: int) -> None:
    """An attempt run in this process (a foreground run): let records at ``level`` reach
    the capture (lower the root level) while the console shows what it showed before (a
    plain stderr handler, as ``logging.basicConfig`` makes it for ``pipeline-run``, takes
    the root's former level). Logging set up otherwise (an embedding program, pytest) is
    left as it is: it decides what reaches the capture."""
    root = logging.getLogger()
    console = [
        h
        for h in root.handlers
        if type(h) is logging.StreamHandler and h.stream in (sys.stderr, sys.__stderr__)
    ]
    if not console or root.level <= level:
        return
    for h in console:
        if h.level < root.level:
            h.setLevel(root.level)
    root.setLevel(level)
