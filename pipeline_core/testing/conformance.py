"""Conformance test classes: does a connector honour the Source / Sink contract?

Subclass in a connector's tests and provide the few methods marked *provide*; pytest
then runs every ``test_*`` method of the base class against the connector::

    class TestFileSource(SourceConformance):
        source_cls = FileSource

        def config(self, tmp_path):                      # a config reading >= 3 batches
            write_rows(tmp_path / "in.jsonl", 50)
            return {"path": str(tmp_path / "in.jsonl")}

        def bad_config(self):                            # (options, the field named)
            return {"path": "x", "format": "xml"}, "format"

Checked for a **source**: a config mistake is a ConfigError naming the field; reading
from the position of any batch resumes exactly after it (nothing lost, nothing twice);
``on_checkpoint_complete`` is accepted in checkpoint order; ``close`` is idempotent, also
after a cancellation in the middle of ``read`` (and ``released()`` says the resources
are gone). For a **sink**: config errors; what completed checkpoints cover is readable
(``read_back``) exactly once; ``close`` is idempotent; a two-phase (exactly-once) sink
shows nothing that no checkpoint covered.
"""

from __future__ import annotations

import asyncio
import builtins
from pathlib import Path
from typing import Any, ClassVar

from pipeline_core.config.converter import structure
from pipeline_core.errors import ConfigError
from pipeline_core.io import Batch, DeliveryGuarantee, RuntimeContext, Sink, Source

__all__ = ["SinkConformance", "SourceConformance"]


def _ctx(component: str, batch_size: int, run_id: str = "conformance-1") -> RuntimeContext:
    return RuntimeContext(
        job_name="conformance",
        execution_id=run_id,
        component=component,
        batch_size=batch_size,
        run_id=run_id,
    )


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


class SourceConformance:
    """Base class of a bounded source's conformance tests (unbounded sources: provide
    ``expected_count`` and ``read`` stops there)."""

    source_cls: ClassVar[builtins.type[Source[Any]]]
    batch_size: ClassVar[int] = 4

    # --- provide ---------------------------------------------------------------------------

    def config(self, tmp_path: Path) -> dict[str, Any]:
        """Options of a source with at least three batches of input."""
        raise NotImplementedError

    def bad_config(self) -> tuple[dict[str, Any], str]:
        """Options with one mistake, and the field the error must name."""
        raise NotImplementedError

    def released(self, source: Source[Any]) -> bool:
        """After ``close``: are its resources (files, connections) released?"""
        return True

    #: Unbounded sources: the number of records ``config`` provides (reading stops there).
    expected_count: ClassVar[int | None] = None
    #: False for sources whose broker keeps unacknowledged messages (RabbitMQ): the
    #: position is informational and resuming is the broker's redelivery, so the exact
    #: resume test does not apply.
    resumes_from_position: ClassVar[bool] = True
    #: Records come in one total order (files, SQL); False for partitioned sources, whose
    #: partitions interleave differently from one read to the next.
    ordered: ClassVar[bool] = True

    # --- helpers ---------------------------------------------------------------------------

    def make(self, options: dict[str, Any]) -> Source[Any]:
        return self.source_cls(structure(options, self.source_cls.config_cls))

    async def _read(
        self, options: dict[str, Any], position: dict[str, Any] | None, stop_at: int | None = None
    ) -> list[Batch]:
        """Read until the source ends (bounded) or ``stop_at`` records were read."""
        src = self.make(options)
        await src.open(_ctx("source (conformance)", self.batch_size), position)
        out: list[Batch] = []
        count = 0
        try:
            if stop_at == 0:
                return out
            async for batch in src.read():
                out.append(batch)
                count += len(batch.records)
                if stop_at is not None and count >= stop_at:
                    break
        finally:
            await src.close()
        return out

    # --- the contract ---------------------------------------------------------------------

    def test_config_errors_name_the_field(self) -> None:
        import pytest  # only in tests: pipeline_core.testing itself must not need pytest

        options, field = self.bad_config()
        with pytest.raises(ConfigError) as info:
            structure(options, self.source_cls.config_cls, job="j", component="source")
        assert any(
            p.field == field or (p.field or "").startswith(field) for p in info.value.problems
        ), str(info.value)

    def test_resumes_exactly_after_each_batch(self, tmp_path: Path) -> None:
        options = self.config(tmp_path)
        total = self.expected_count
        batches = _run(self._read(options, None, total))
        everything = [r for b in batches for r in b.records]
        assert len(batches) >= 3, "config() must give at least three batches"
        assert all(b.position is not None for b in batches), "every batch needs a position"
        if not self.resumes_from_position:
            return
        for k in (0, len(batches) // 2, len(batches) - 1):
            before = [r for b in batches[: k + 1] for r in b.records]
            remaining = None if total is None else total - len(before)
            rest = _run(self._read(options, batches[k].position, remaining))
            after = [r for b in rest for r in b.records]
            assert sorted(map(repr, before + after)) == sorted(map(repr, everything)), (
                f"resuming after batch {k} lost or repeated records"
            )
            if self.ordered:
                assert before + after == everything, f"resuming after batch {k} reordered"

    def test_checkpoint_completion_in_order_is_accepted(self, tmp_path: Path) -> None:
        options = self.config(tmp_path)  # (outside the loop: it may run its own)

        async def go() -> None:
            src = self.make(options)
            await src.open(_ctx("source (conformance)", self.batch_size), None)
            cid = 0
            assert hasattr(src, "read")
            try:
                async for batch in src.read():
                    cid += 1
                    assert batch.position is not None
                    await src.on_checkpoint_complete(cid, batch.position)
                    if cid >= 3:
                        break
            finally:
                await src.close()

        _run(go())

    def test_close_is_idempotent_and_cancellation_releases(self, tmp_path: Path) -> None:
        options = self.config(tmp_path)

        async def go() -> Source[Any]:
            src = self.make(options)
            await src.open(_ctx("source (conformance)", self.batch_size), None)
            reader = src.read()

            async def pull() -> None:
                async for _ in reader:
                    await asyncio.sleep(0.01)

            task = asyncio.create_task(pull())
            await asyncio.sleep(0.02)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await reader.aclose()  # type: ignore[attr-defined]
            await src.close()
            await src.close()
            return src

        src = _run(go())
        assert self.released(src), "close() left resources open"


class SinkConformance:
    """Base class of a sink's conformance tests."""

    sink_cls: ClassVar[builtins.type[Sink[Any]]]

    # --- provide ---------------------------------------------------------------------------

    def config(self, tmp_path: Path) -> dict[str, Any]:
        raise NotImplementedError

    def bad_config(self) -> tuple[dict[str, Any], str]:
        raise NotImplementedError

    def records(self, start: int, count: int) -> list[Any]:
        """Distinct records (default: ``{"id": n}`` dicts)."""
        return [{"id": n} for n in range(start, start + count)]

    def read_back(self, tmp_path: Path, options: dict[str, Any]) -> list[Any]:
        """Everything the sink's destination holds now."""
        raise NotImplementedError

    # --- the contract ---------------------------------------------------------------------

    def make(self, options: dict[str, Any]) -> Sink[Any]:
        return self.sink_cls(structure(options, self.sink_cls.config_cls))

    def test_config_errors_name_the_field(self) -> None:
        import pytest  # only in tests: pipeline_core.testing itself must not need pytest

        options, field = self.bad_config()
        with pytest.raises(ConfigError) as info:
            structure(options, self.sink_cls.config_cls, job="j", component="sink")
        assert any(
            p.field == field or (p.field or "").startswith(field) for p in info.value.problems
        ), str(info.value)

    def test_committed_records_arrive_once_and_close_is_idempotent(self, tmp_path: Path) -> None:
        options = self.config(tmp_path)

        async def go() -> None:
            sink = self.make(options)
            await sink.open(_ctx("sink (conformance)", 100))
            try:
                for cid, start in ((1, 0), (2, 10)):
                    await sink.write(self.records(start, 10))
                    prepared = await sink.prepare_commit(cid)
                    assert prepared is None or isinstance(prepared, dict)
                    await sink.on_checkpoint_complete(cid)
            finally:
                await sink.close()
                await sink.close()

        _run(go())
        got = self.read_back(tmp_path, options)
        want = self.records(0, 20)
        key = repr
        assert sorted(map(key, got)) == sorted(map(key, want))

    def test_uncommitted_writes_of_a_two_phase_sink_stay_invisible(self, tmp_path: Path) -> None:
        options = self.config(tmp_path)
        if self.make(options).guarantee is not DeliveryGuarantee.EXACTLY_ONCE:
            return  # at-least-once sinks may show them; nothing to check

        async def go() -> None:
            sink = self.make(options)
            await sink.open(_ctx("sink (conformance)", 100, "conformance-2"))
            await sink.write(self.records(0, 5))
            await sink.prepare_commit(1)
            await sink.on_checkpoint_complete(1)
            await sink.write(self.records(5, 5))  # never committed
            await sink.close()

        _run(go())
        assert sorted(map(repr, self.read_back(tmp_path, options))) == sorted(
            map(repr, self.records(0, 5))
        )
