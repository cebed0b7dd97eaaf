"""Event-time windows: tumbling and sliding, with bounded out-of-orderness watermarks,
idle partitions, allowed lateness and late records.

Per record: its event time ``ts`` (ms) and its partition (the Kafka record's
``partition`` field by default). Each partition's watermark is the highest ``ts`` seen
there minus ``out_of_orderness``; the operator's watermark is the minimum over the
partitions that are not idle (no record for ``idle_timeout``), so one slow partition holds
the windows back and an idle one does not. A window ``[start, end)`` fires when the
watermark reaches ``end``; it stays open for ``allowed_lateness`` more, re-emitting an
updated result for each late record that still fits; a record whose every window closed
is *late*: counted, and dropped or emitted as ``{"late": true, …}`` (``on_late``).

Partitions are learnt from the records, so a partition that has sent nothing yet cannot
hold the watermark back — unless ``partitions`` (the input's partition count) is given:
then the watermark waits until every partition has sent a record or ``idle_timeout``
has passed since the start.

Window contents (one accumulator per key and window) live in the keyed state backend
(``MapState`` ``windows``), so they are in every checkpoint and survive a crash; the small
index of open windows and the watermarks are the operator's own snapshot.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Hashable
from typing import Any

from pipeline_core.runtime.errors_policy import FailureCollector
from pipeline_core.runtime.operators import Operator
from pipeline_core.state.api import KeyedState

__all__ = ["WindowOp"]

_INF = float("inf")


class WindowOp(Operator):
    def __init__(
        self,
        name: str,
        state: KeyedState,
        key: Callable[[Any], Hashable],
        *,
        size_ms: int,
        slide_ms: int | None,
        timestamp: Callable[[Any], float],
        aggregate: Callable[[Any, Any], Any],
        initial: Callable[[], Any],
        out_of_orderness_ms: int = 0,
        allowed_lateness_ms: int = 0,
        idle_timeout_s: float | None = None,
        partition: Callable[[Any], Hashable] | None = None,
        on_late: str = "drop",
        partitions: int | None = None,
    ) -> None:
        super().__init__(name)
        #: partitions 0..n-1 expected: the watermark waits for each (or its idle timeout)
        self.expected = partitions
        self.started = time.monotonic()
        if size_ms <= 0 or (slide_ms is not None and not 0 < slide_ms <= size_ms):
            raise ValueError("window size must be > 0 and 0 < slide <= size")
        self.state, self.key = state, key
        self.size, self.slide = size_ms, slide_ms or size_ms
        self.timestamp, self.aggregate, self.initial = timestamp, aggregate, initial
        self.ooo, self.lateness = out_of_orderness_ms, allowed_lateness_ms
        self.idle = idle_timeout_s
        self.partition = partition or _partition_field
        self.on_late = on_late
        self.windows = state.map("windows")
        #: per partition: highest event time seen, and when (wall clock) its last record came
        self.max_ts: dict[Hashable, float] = {}
        self.seen_at: dict[Hashable, float] = {}
        #: open windows as a heap of (end, start, key); fired: those already emitted once
        self.open: list[tuple[int, int, Any]] = []
        self.fired: set[tuple[int, Any]] = set()
        self.watermark: float = -_INF
        self.late_records = 0

    def _starts(self, ts: float) -> list[int]:
        last = int(ts // self.slide) * self.slide
        return [s for s in range(last, last - self.size, -self.slide) if s <= ts < s + self.size]

    def _advance(self, now: float) -> None:
        # a partition not heard from yet holds everything back, until it counts as idle
        waiting = self.expected is not None and any(
            p not in self.max_ts for p in range(self.expected)
        )
        if waiting and (self.idle is None or now - self.started < self.idle):
            return
        active = [
            m
            for p, m in self.max_ts.items()
            if self.idle is None or now - self.seen_at.get(p, now) < self.idle
        ]
        if active:
            self.watermark = max(self.watermark, min(active) - self.ooo)

    def process(self, records: list[Any], errors: FailureCollector) -> list[Any]:
        out: list[Any] = []
        state, windows, key_of, ts_of = self.state, self.windows, self.key, self.timestamp
        now = time.monotonic()
        for r in records:
            try:
                ts, k, p = float(ts_of(r)), key_of(r), self.partition(r)
            except Exception as exc:
                errors.record(r, exc, self.name)
                continue
            self.seen_at[p] = now
            if ts > self.max_ts.get(p, -_INF):
                self.max_ts[p] = ts
                self._advance(now)
            state._set_key(k)
            live = [s for s in self._starts(ts) if s + self.size + self.lateness > self.watermark]
            if not live:
                self.late_records += 1
                if self.on_late == "emit":
                    out.append({"late": True, "key": k, "timestamp": ts, "record": r})
                continue
            for start in live:
                existing = windows.get(start)
                try:
                    acc = self.aggregate(self.initial() if existing is None else existing, r)
                except Exception as exc:
                    errors.record(r, exc, self.name)
                    break
                if acc is None:
                    continue
                new = existing is None
                windows.put(start, acc)
                end = start + self.size
                if new:
                    heapq.heappush(self.open, (end, start, k))
                elif (start, k) in self.fired:  # late but within lateness: updated result
                    out.append(self._result(k, start, acc))
        self._advance(now)  # idle partitions may have stopped holding it back
        out.extend(self._fire())
        return out

    def _result(self, key: Any, start: int, acc: Any) -> dict[str, Any]:
        return {"key": key, "window_start": start, "window_end": start + self.size, "value": acc}

    def _fire(self, watermark: float | None = None) -> list[Any]:
        """Emit windows whose end the watermark reached; purge those past the lateness."""
        wm = self.watermark if watermark is None else watermark
        out: list[Any] = []
        heap, state, windows = self.open, self.state, self.windows
        still_open: list[tuple[int, int, Any]] = []
        while heap and heap[0][0] <= wm:
            end, start, k = heapq.heappop(heap)
            state._set_key(k)
            if (start, k) not in self.fired:
                acc = windows.get(start)
                if acc is not None:
                    out.append(self._result(k, start, acc))
                self.fired.add((start, k))
            if end + self.lateness <= wm:
                windows.remove(start)
                self.fired.discard((start, k))
            else:
                still_open.append((end, start, k))  # fired; late records may still update it
        for item in still_open:
            heapq.heappush(heap, item)
        return out

    def flush(self) -> list[Any]:
        """End of a bounded input: every open window fires."""
        self.watermark = _INF
        out = self._fire(_INF)
        return out

    def snapshot_state(self) -> Any:
        return {
            "max_ts": dict(self.max_ts),
            "open": list(self.open),
            "fired": sorted(self.fired, key=repr),
            "watermark": self.watermark,
            "late": self.late_records,
        }

    def restore_state(self, state: Any) -> None:
        self.max_ts = dict(state["max_ts"])
        self.open = list(state["open"])
        heapq.heapify(self.open)
        self.fired = set(state["fired"])
        self.watermark = state["watermark"]
        self.late_records = state["late"]
        now = time.monotonic()
        self.seen_at = {p: now for p in self.max_ts}


def _partition_field(record: Any) -> Hashable:
    if isinstance(record, dict):
        p = record.get("partition", 0)
        return p if isinstance(p, Hashable) else 0
    return 0
