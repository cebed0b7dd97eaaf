"""The fluent transform API (the Reactor ``Flux`` analogue).

A job's transform is a function ``Stream -> Stream``::

    lambda s: s.map(str.upper).filter(lambda x: len(x) > 5)

A Stream only *describes* the operator chain; each execution builds fresh operators from
it (so per-execution state such as ``distinct``'s seen-set never leaks between runs). The
per-record methods compile onto loops over whole batches.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Hashable, Iterable
from concurrent.futures import Executor
from typing import Any

from pipeline_core.runtime import operators as ops
from pipeline_core.state.api import KeyedState, StateManager
from pipeline_core.state.memory import MemoryStateBackend

__all__ = ["KeyedStream", "Stream"]

_OpFactory = Callable[["_BuildContext"], ops.Operator]


class _BuildContext:
    """What operators need from the execution when they are built."""

    def __init__(self, executor: Executor | None, parallelism: int, state: StateManager) -> None:
        self.executor = executor
        self.parallelism = parallelism
        self.state = state


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


class Stream:
    """An immutable chain of operators; every method returns a new Stream."""

    __slots__ = ("_factories",)

    def __init__(self, factories: tuple[tuple[str, _OpFactory], ...] = ()) -> None:
        self._factories = factories

    def _then(
        self, label: str, name: str | None, factory: Callable[[str, _BuildContext], ops.Operator]
    ) -> Stream:
        step_name = name or f"transform step {len(self._factories) + 1} ({label})"
        return Stream((*self._factories, (step_name, lambda bc: factory(step_name, bc))))

    def map(
        self, fn: Callable[[Any], Any], *, cpu: bool = False, name: str | None = None
    ) -> Stream:
        """Replace each record by ``fn(record)``. ``cpu=True`` runs ``fn`` in the job's
        process pool when ``parallelism`` > 1 (``fn`` must then be importable/picklable)."""
        label = f"map {_fn_name(fn)}"
        if cpu:
            return self._then(label, name, lambda n, bc: _cpu_map(n, fn, bc))
        return self._then(label, name, lambda n, _bc: ops.MapOp(n, fn))

    def filter(self, predicate: Callable[[Any], Any], *, name: str | None = None) -> Stream:
        """Keep records for which ``predicate(record)`` is true."""
        return self._then(
            f"filter {_fn_name(predicate)}", name, lambda n, _bc: ops.FilterOp(n, predicate)
        )

    def flat_map(self, fn: Callable[[Any], Iterable[Any]], *, name: str | None = None) -> Stream:
        """Replace each record by the records of the iterable ``fn(record)`` (zero or more)."""
        return self._then(f"flat_map {_fn_name(fn)}", name, lambda n, _bc: ops.FlatMapOp(n, fn))

    def select(self, *fields: str, name: str | None = None) -> Stream:
        """Keep only the given keys of dict records."""
        return self._then("select", name, lambda n, _bc: ops.SelectOp(n, list(fields)))

    def distinct(
        self, key: Callable[[Any], Hashable] | None = None, *, name: str | None = None
    ) -> Stream:
        """Drop records whose ``key(record)`` (default: the record) was already seen.
        The seen keys live in the state backend (and so in checkpoints)."""
        return self._then("distinct", name, lambda n, bc: ops.DistinctOp(n, bc.state.keyed(n), key))

    def key_by(self, key: Callable[[Any], Hashable]) -> KeyedStream:
        """Partition by ``key(record)``: the next step gets per-key state."""
        return KeyedStream(self, key)

    def batch(self, size: int, *, name: str | None = None) -> Stream:
        """Group records into lists of ``size`` (Reactor's ``buffer(n)``); the rest at the end."""
        if size <= 0:
            raise ValueError(f"batch size must be > 0, got {size}")
        return self._then("batch", name, lambda n, _bc: ops.BatchOp(n, size))

    buffer = batch

    def rate_limit(self, per_second: float, *, name: str | None = None) -> Stream:
        """Let at most ``per_second`` records per second through."""
        if per_second <= 0:
            raise ValueError(f"rate_limit must be > 0 records/s, got {per_second}")
        return self._then("rate_limit", name, lambda n, _bc: ops.RateLimitOp(n, per_second))

    def map_async(
        self,
        fn: Callable[[Any], Awaitable[Any]],
        *,
        concurrency: int = 16,
        name: str | None = None,
    ) -> Stream:
        """Await ``fn(record)`` for each record, ``concurrency`` at a time; order is kept."""
        if concurrency <= 0:
            raise ValueError(f"concurrency must be > 0, got {concurrency}")
        return self._then(
            f"map_async {_fn_name(fn)}",
            name,
            lambda n, _bc: ops.MapAsyncOp(n, fn, concurrency),
        )

    def step_names(self) -> list[str]:
        return [name for name, _ in self._factories]

    def build(
        self,
        executor: Executor | None = None,
        parallelism: int = 1,
        state: StateManager | None = None,
    ) -> list[ops.Operator]:
        """Fresh operator instances for one execution (state: a memory backend if None)."""
        bc = _BuildContext(executor, parallelism, state or StateManager(MemoryStateBackend()))
        return [factory(bc) for _name, factory in self._factories]

    def __len__(self) -> int:
        return len(self._factories)

    def __repr__(self) -> str:
        return f"Stream({' -> '.join(self.step_names()) or 'identity'})"


class KeyedStream:
    """A Stream partitioned by a key; its steps see per-key state.

    ``fn(record, state)`` gets a :class:`~pipeline_core.state.KeyedState` positioned at the
    record's key: ``state.value("count", 0)``, ``state.list(...)``, ``state.map(...)``.
    """

    __slots__ = ("_key", "_stream")

    def __init__(self, stream: Stream, key: Callable[[Any], Hashable]) -> None:
        self._stream = stream
        self._key = key

    def map(self, fn: Callable[[Any, KeyedState], Any], *, name: str | None = None) -> Stream:
        """Emit ``fn(record, state)`` for each record (nothing when it returns None)."""
        key = self._key
        return self._stream._then(
            f"keyed map {_fn_name(fn)}",
            name,
            lambda n, bc: ops.KeyedMapOp(n, bc.state.keyed(n), key, fn),
        )

    def window(
        self,
        size: Any,
        *,
        timestamp: Callable[[Any], float] | str,
        aggregate: Callable[[Any, Any], Any],
        initial: Any = None,
        slide: Any = None,
        out_of_orderness: Any = 0,
        allowed_lateness: Any = 0,
        idle_timeout: Any = None,
        partition: Callable[[Any], Hashable] | None = None,
        on_late: str = "drop",
        partitions: int | None = None,
        name: str | None = None,
    ) -> Stream:
        """Event-time windows per key: tumbling (``size``) or sliding (``size`` + ``slide``);
        durations as ``"10s"`` or milliseconds. ``timestamp``: a field name or a function
        giving the record's event time in epoch milliseconds. ``aggregate(acc, record)``
        folds records into the window's accumulator, starting from ``initial`` (a value,
        copied per window, or a zero-argument function). Emits ``{"key", "window_start",
        "window_end", "value"}`` when the watermark (highest event time per partition minus
        ``out_of_orderness``, the minimum over partitions not idle for ``idle_timeout``)
        passes the window's end. See :mod:`pipeline_core.runtime.windows`."""
        from pipeline_core.config.converter import parse_duration
        from pipeline_core.runtime.windows import WindowOp

        def ms(value: Any) -> int:
            return int(parse_duration(value).total_seconds() * 1000)

        ts = (lambda r: r[timestamp]) if isinstance(timestamp, str) else timestamp
        make_initial = initial if callable(initial) else (lambda: copy.deepcopy(initial))
        key = self._key
        idle = parse_duration(idle_timeout).total_seconds() if idle_timeout is not None else None
        if on_late not in ("drop", "emit"):
            raise ValueError(f"on_late must be 'drop' or 'emit', got {on_late!r}")
        return self._stream._then(
            f"window {_fn_name(aggregate)}",
            name,
            lambda n, bc: WindowOp(
                n,
                bc.state.keyed(n),
                key,
                size_ms=ms(size),
                slide_ms=ms(slide) if slide is not None else None,
                timestamp=ts,
                aggregate=aggregate,
                initial=make_initial,
                out_of_orderness_ms=ms(out_of_orderness),
                allowed_lateness_ms=ms(allowed_lateness),
                idle_timeout_s=idle,
                partition=partition,
                on_late=on_late,
                partitions=partitions,
            ),
        )

    def flat_map(
        self, fn: Callable[[Any, KeyedState], Iterable[Any]], *, name: str | None = None
    ) -> Stream:
        """Emit every record of ``fn(record, state)``."""
        key = self._key
        return self._stream._then(
            f"keyed flat_map {_fn_name(fn)}",
            name,
            lambda n, bc: ops.KeyedMapOp(n, bc.state.keyed(n), key, fn, flat=True),
        )

    def reduce(
        self, fn: Callable[[Any, Any], Any], initial: Any = None, *, name: str | None = None
    ) -> Stream:
        """Running reduction per key: emits ``{"key": k, "value": acc}`` after each record,
        where ``acc = fn(previous acc or initial, record)``."""

        def step(record: Any, state: KeyedState) -> Any:
            acc = state.value("acc", initial)
            value = fn(acc.value(), record)
            acc.update(value)
            return {"key": state.key, "value": value}

        return self.map(step, name=name or f"reduce {_fn_name(fn)}")


def _cpu_map(name: str, fn: Callable[[Any], Any], bc: _BuildContext) -> ops.Operator:
    if bc.executor is None or bc.parallelism <= 1:
        return ops.MapOp(name, fn)
    return ops.ParallelMapOp(name, fn, bc.executor, bc.parallelism)
