"""Batch operators: what the per-record Stream API compiles to.

Every operator takes a whole list of records and returns a list. Synchronous operators
first try a plain list comprehension over the batch (the fast path); only when it raises do
they re-run that batch record by record to isolate the failing record and hand it to the
job's ``on_error`` policy. Transform functions should therefore be free of side effects
(a function that raised mid-batch sees the records before the failure again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from concurrent.futures import Executor
from typing import Any

import orjson

from pipeline_core.runtime.errors_policy import FailureCollector
from pipeline_core.state.api import KeyedState

__all__ = [
    "BatchOp",
    "DistinctOp",
    "FilterOp",
    "FlatMapOp",
    "KeyedMapOp",
    "MapAsyncOp",
    "MapOp",
    "Operator",
    "ParallelMapOp",
    "RateLimitOp",
    "SelectOp",
]


class Operator:
    """Base class. ``name`` appears in error messages (``transform step 2 (map enrich)``)."""

    is_async = False

    def __init__(self, name: str) -> None:
        self.name = name

    def process(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        raise NotImplementedError

    async def aprocess(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        return self.process(records, errors)

    def flush(self) -> list[Any]:
        """Records held back, emitted when the input ends."""
        return []

    def snapshot_state(self) -> Any:
        """Small in-memory state to store in a checkpoint (None: nothing).
        Large state belongs in the state backend instead."""
        return None

    def restore_state(self, state: Any) -> None:
        """Take back what :meth:`snapshot_state` returned at a checkpoint."""


class MapOp(Operator):
    def __init__(self, name: str, fn: Callable[[Any], Any]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        fn = self.fn
        try:
            return [fn(r) for r in records]
        except Exception:
            pass
        out = []
        for r in records:
            try:
                out.append(fn(r))
            except Exception as exc:
                errors.record(r, exc, self.name)
        return out


class FilterOp(Operator):
    def __init__(self, name: str, predicate: Callable[[Any], Any]) -> None:
        super().__init__(name)
        self.predicate = predicate

    def process(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        pred = self.predicate
        try:
            return [r for r in records if pred(r)]
        except Exception:
            pass
        out = []
        for r in records:
            try:
                if pred(r):
                    out.append(r)
            except Exception as exc:
                errors.record(r, exc, self.name)
        return out


class FlatMapOp(Operator):
    def __init__(self, name: str, fn: Callable[[Any], Iterable[Any]]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        fn = self.fn
        try:
            return [x for r in records for x in fn(r)]
        except Exception:
            pass
        out: list[Any] = []
        for r in records:
            try:
                out.extend(fn(r))
            except Exception as exc:
                errors.record(r, exc, self.name)
        return out


class SelectOp(MapOp):
    """Keep only ``fields`` of dict records (a missing field is a failed record)."""

    def __init__(self, name: str, fields: list[str]) -> None:
        keys = tuple(fields)

        def select(r: dict[str, Any]) -> dict[str, Any]:
            return {k: r[k] for k in keys}

        super().__init__(name, select)


def _default_key(record: Any) -> Hashable:
    if isinstance(record, Hashable):
        return record
    # dicts and lists: their canonical JSON is the identity
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


class DistinctOp(Operator):
    """Drop records whose key was seen before in this job (kept in the state backend,
    so a restored execution remembers what it saw)."""

    def __init__(
        self, name: str, state: KeyedState, key: Callable[[Any], Hashable] | None = None
    ) -> None:
        super().__init__(name)
        self.key = key or _default_key
        self.seen = state.value("seen", False)
        self.state = state

    def process(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        key, seen, set_key = self.key, self.seen, self.state._set_key
        out = []
        for r in records:
            try:
                set_key(key(r))
            except Exception as exc:
                errors.record(r, exc, self.name)
                continue
            if not seen.value():
                seen.update(True)
                out.append(r)
        return out


class KeyedMapOp(Operator):
    """``fn(record, state)`` with ``state`` at the record's key; a None result emits nothing."""

    def __init__(
        self,
        name: str,
        state: KeyedState,
        key: Callable[[Any], Hashable],
        fn: Callable[[Any, KeyedState], Any],
        flat: bool = False,
    ) -> None:
        super().__init__(name)
        self.state = state
        self.key = key
        self.fn = fn
        self.flat = flat

    def process(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        key, fn, state, set_key, flat = (
            self.key,
            self.fn,
            self.state,
            self.state._set_key,
            self.flat,
        )
        out: list[Any] = []
        for r in records:
            try:
                set_key(key(r))
                res = fn(r, state)
            except Exception as exc:
                errors.record(r, exc, self.name)
                continue
            if res is None:
                continue
            if flat:
                out.extend(res)
            else:
                out.append(res)
        return out


class BatchOp(Operator):
    """Group records into lists of ``size`` (the last one may be shorter)."""

    def __init__(self, name: str, size: int) -> None:
        super().__init__(name)
        self.size = size
        self.pending: list[Any] = []

    def process(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        pending = self.pending
        pending.extend(records)
        size = self.size
        if len(pending) < size:
            return []
        cut = len(pending) - len(pending) % size
        out = [pending[i : i + size] for i in range(0, cut, size)]
        self.pending = pending[cut:]
        return out

    def flush(self) -> list[Any]:
        out, self.pending = ([self.pending] if self.pending else []), []
        return out

    def snapshot_state(self) -> Any:
        return list(self.pending)

    def restore_state(self, state: Any) -> None:
        self.pending = list(state)


class RateLimitOp(Operator):
    """Let at most ``per_second`` records through per second (on average, per batch)."""

    is_async = True

    def __init__(self, name: str, per_second: float) -> None:
        super().__init__(name)
        self.per_second = per_second
        self.started: float | None = None
        self.count = 0

    async def aprocess(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        # Release each chunk when the records before it have had their share of time.
        step = max(1, int(self.per_second // 10))
        for i in range(0, len(records), step):
            due = self.started + self.count / self.per_second
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.count += min(step, len(records) - i)
        return records


class MapAsyncOp(Operator):
    """Apply an async function with at most ``concurrency`` calls in flight; keeps order."""

    is_async = True

    def __init__(self, name: str, fn: Callable[[Any], Awaitable[Any]], concurrency: int) -> None:
        super().__init__(name)
        self.fn = fn
        self.concurrency = concurrency

    async def aprocess(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        sem = asyncio.Semaphore(self.concurrency)
        fn = self.fn

        async def call(r: Any) -> Any:
            async with sem:
                return await fn(r)

        results = await asyncio.gather(*(call(r) for r in records), return_exceptions=True)
        out = []
        for r, res in zip(records, results, strict=True):
            if isinstance(res, BaseException):
                if not isinstance(res, Exception):
                    raise res
                errors.record(r, res, self.name)
            else:
                out.append(res)
        return out


def _map_chunk(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    # Runs in a worker process: failures come back as values so one bad record does not
    # lose the chunk.
    out = []
    for r in chunk:
        try:
            out.append((True, fn(r)))
        except Exception as exc:
            out.append((False, (type(exc).__name__, str(exc))))
    return out


class ParallelMapOp(Operator):
    """A CPU-heavy map spread over a process pool: the batch is split in ``workers`` chunks."""

    is_async = True

    def __init__(
        self, name: str, fn: Callable[[Any], Any], executor: Executor, workers: int
    ) -> None:
        super().__init__(name)
        self.fn = fn
        self.executor = executor
        self.workers = workers

    async def aprocess(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        loop = asyncio.get_running_loop()
        size = max(1, -(-len(records) // self.workers))
        chunks = [records[i : i + size] for i in range(0, len(records), size)]
        results = await asyncio.gather(
            *(loop.run_in_executor(self.executor, _map_chunk, self.fn, c) for c in chunks)
        )
        out = []
        for chunk, res in zip(chunks, results, strict=True):
            for r, (ok, value) in zip(chunk, res, strict=True):
                if ok:
                    out.append(value)
                else:
                    type_name, message = value
                    errors.record_remote(r, type_name, message, self.name)
        return out
