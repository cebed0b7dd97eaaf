"""Live updates for the dashboard: ``GET /api/events``, a Server-Sent Events stream.

One :class:`EventHub` per app looks at the database once per ``interval`` (two small
queries: the executions that are active or ended since the last look, and each job's
version and enabled flag) however many clients listen, and sends each client only what
changed: ``execution`` events (the execution's list document, with live records/s while
it runs here), ``job`` events (``{"name": …}``: the client re-reads what it shows of
that job), ``checkpoint`` events (``{"execution_id": …}``: a checkpoint of it
completed, seen in the execution row the hub reads anyway: the client re-reads the
checkpoints) and ``log`` events (``{"execution_id": …, "last_seq": n}``: the execution
has log lines up to ``n``; the client reads those it lacks from ``…/logs?after=``). A third
small query finds the new log lines: those with a row id above the last look's, grouped
by execution. Twenty dashboards cost three queries a second, not sixty full job lists.

While it runs, the hub also keeps the records/s of each execution running on this
instance, one sample per look (``GET /api/executions/{id}/throughput``), so a chart opened
late still shows the last minutes.

The hub runs while someone listens and stops with the last listener. A comment line
every 15 s keeps proxies from closing an idle stream. Each stream ends after
:data:`LIFETIME` seconds and the client reconnects (and re-reads what it shows): uvicorn's
graceful shutdown waits for every open response, so an endless stream would keep a
``serve`` that was sent SIGTERM from stopping while a dashboard is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Engine, func, or_, select

from pipeline_core.api.schemas import JSON_OPTIONS
from pipeline_core.runtime.lifecycle import ACTIVE
from pipeline_core.store import models as m
from pipeline_core.store.executions import _record as execution_record

__all__ = ["EventHub"]

log = logging.getLogger("pipeline_core.api")

_ACTIVE = [s.value for s in ACTIVE]
KEEPALIVE = 15.0
LIFETIME = 20.0
#: records/s samples kept per execution (one per look: ten minutes at the default)
SAMPLES = 600


def sse(event: str, data: Any) -> bytes:
    """One Server-Sent Event (``data`` as one line of JSON)."""
    return (
        b"event: "
        + event.encode()
        + b"\ndata: "
        + orjson.dumps(data, option=JSON_OPTIONS)
        + b"\n\n"
    )


class EventHub:
    """Polls for changes once per ``interval`` and fans them out to every listener."""

    def __init__(
        self,
        engine: Engine,
        execution_doc: Callable[[Any], dict[str, Any]],
        interval: float = 1.0,
        max_listeners: int = 100,
        lifetime: float = LIFETIME,
    ) -> None:
        self.engine = engine
        self.execution_doc = execution_doc
        self.interval = interval
        self.max_listeners = max_listeners
        self.lifetime = lifetime
        self._listeners: set[asyncio.Queue[bytes]] = set()
        self._task: asyncio.Task[None] | None = None
        self._executions: dict[str, dict[str, Any]] = {}
        self._jobs: dict[str, tuple[int, bool]] = {}
        #: execution id → where its newest completed checkpoint is stored
        self._checkpoints: dict[str, str | None] = {}
        #: the highest log row id seen (None: not looked yet)
        self._log_id: int | None = None
        #: set once the first look is taken: what a listener is told changed is measured
        #: from there, so nothing that happens after its hello is missed
        self._ready = asyncio.Event()
        #: execution id → (time, records/s, records read) while it runs on this instance
        self.samples: dict[str, deque[tuple[dt.datetime, float, int]]] = {}

    @property
    def full(self) -> bool:
        return len(self._listeners) >= self.max_listeners

    def _look(
        self, since: dt.datetime
    ) -> tuple[list[Any], dict[str, tuple[int, bool]], dict[str, int]]:
        x, j, g = m.Execution, m.JobDefinition, m.ExecutionLog
        logs: dict[str, int] = {}
        with self.engine.connect() as conn:
            if self._log_id is None:  # the first look: only what comes after it is news
                self._log_id = int(conn.execute(select(func.max(g.id))).scalar() or 0)
            else:
                for eid, seq, row_id in conn.execute(
                    select(g.execution_id, func.max(g.seq), func.max(g.id))
                    .where(g.id > self._log_id)
                    .group_by(g.execution_id)
                ):
                    logs[eid] = int(seq)
                    self._log_id = max(self._log_id, int(row_id))
            rows: Sequence[Any] = conn.execute(
                select(x)
                .where(or_(x.status.in_(_ACTIVE), x.end_time >= since))
                .order_by(x.start_time, x.id)
            ).all()  # Core rows: the record reads their columns by name
            jobs = {
                r[0]: (r[1], r[2]) for r in conn.execute(select(j.job_name, j.version, j.enabled))
            }
        return [execution_record(r) for r in rows], jobs, logs

    async def _run(self) -> None:
        first = True
        since = m.utcnow()
        while True:
            now = m.utcnow()
            try:
                records, jobs, logs = await asyncio.to_thread(
                    self._look, since - dt.timedelta(seconds=2)
                )
            except Exception:
                log.warning("live updates: the metadata database did not answer", exc_info=True)
                await asyncio.sleep(self.interval)
                continue
            since = now
            out: list[bytes] = []
            seen = set()
            for r in records:
                doc = self.execution_doc(r)
                seen.add(r.execution_id)
                if doc.get("throughput") is not None:
                    self.samples.setdefault(r.execution_id, deque(maxlen=SAMPLES)).append(
                        (now, doc["throughput"], doc["processed_records"])
                    )
                if self._executions.get(r.execution_id) != doc:
                    self._executions[r.execution_id] = doc
                    if not first:
                        out.append(sse("execution", doc))
                path = r.checkpoint_path
                if self._checkpoints.get(r.execution_id) != path and path and not first:
                    out.append(sse("checkpoint", {"execution_id": r.execution_id}))
                self._checkpoints[r.execution_id] = path
            for eid in set(self._executions) - seen:
                del self._executions[eid]
            for eid in set(self._checkpoints) - seen:
                del self._checkpoints[eid]
            for eid in set(self.samples) - seen:
                del self.samples[eid]
            for name, state in jobs.items():
                if self._jobs.get(name) != state and not first:
                    out.append(sse("job", {"name": name}))
            for name in set(self._jobs) - set(jobs):
                out.append(sse("job", {"name": name, "deleted": True}))
            self._jobs = jobs
            for eid, seq in logs.items():
                out.append(sse("log", {"execution_id": eid, "last_seq": seq}))
            first = False
            self._ready.set()
            if out:
                chunk = b"".join(out)
                for q in list(self._listeners):
                    if q.qsize() < 100:  # a client that stopped reading loses updates
                        q.put_nowait(chunk)
            await asyncio.sleep(self.interval)

    async def stream(self, hello: dict[str, Any]) -> AsyncIterator[bytes]:
        """The byte stream of one listener: a ``hello`` event, then the changes."""
        q: asyncio.Queue[bytes] = asyncio.Queue()
        self._listeners.add(q)
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run())
        loop = asyncio.get_running_loop()
        end = loop.time() + self.lifetime
        try:
            await self._ready.wait()
            yield b"retry: 1000\n" + sse("hello", hello)
            while (left := end - loop.time()) > 0:
                try:
                    yield await asyncio.wait_for(q.get(), min(KEEPALIVE, left))
                except TimeoutError:
                    yield b": keep-alive\n\n"
        finally:
            self._listeners.discard(q)
            if not self._listeners and self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None
                self._executions.clear()
                self._jobs.clear()
                self._checkpoints.clear()
                self._log_id = None
                # samples stay: a dashboard reloading its page restarts the hub at once
