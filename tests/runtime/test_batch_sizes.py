"""Batch sizes: the job's setting, else what the component prefers, else 256."""

from __future__ import annotations

from typing import Any

from pipeline_core import PipelineJob
from pipeline_core.io import DEFAULT_BATCH_SIZE, Batch
from pipeline_core.testing import ListSink, ListSinkConfig, MemorySource, run


class ChunkySource(MemorySource):
    preferred_batch_size = 30

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    async def read(self):  # type: ignore[no-untyped-def, override]
        async for batch in super().read():
            self.batches.append(len(batch.records))
            yield Batch(batch.records, batch.position)


class BulkSink(ListSink):
    preferred_batch_size = 50

    def __init__(self, config: ListSinkConfig | None = None) -> None:
        super().__init__(config)
        self.sizes: list[int] = []

    async def write(self, records: list[Any]) -> None:
        self.sizes.append(len(records))
        await super().write(records)


def job(source: MemorySource, sink: ListSink, **config: Any) -> PipelineJob:
    return PipelineJob.builder().name("batches").source(source).sink(sink).config(**config).build()


def test_components_get_their_preferred_batch_sizes_by_default() -> None:
    source, sink = ChunkySource.of(list(range(1000))), BulkSink(ListSinkConfig(delay=0.001))
    run(job(source, sink))
    assert source.ctx.batch_size == 30
    assert sink.ctx.batch_size == 50
    assert set(source.batches[:-1]) == {30}  # 33 full batches and the rest (10)
    # output is coalesced until 50 wait (not 256): a write holds less than 50 + 30
    assert max(sink.sizes) < 50 + 30
    assert sink.committed == list(range(1000))


def test_the_job_setting_wins_over_the_preference() -> None:
    source, sink = ChunkySource.of(list(range(100))), BulkSink()
    run(job(source, sink, source_batch_size=7, sink_batch_size=9))
    assert (source.ctx.batch_size, sink.ctx.batch_size) == (7, 9)
    assert set(source.batches[:-1]) == {7}
    assert max(sink.sizes) < 9 + 7


def test_components_without_a_preference_get_the_default() -> None:
    source, sink = MemorySource.of(list(range(10))), ListSink()
    built = job(source, sink)
    assert built.config.source_batch_size is None and built.config.sink_batch_size is None
    run(built)
    assert source.ctx.batch_size == sink.ctx.batch_size == DEFAULT_BATCH_SIZE == 256
