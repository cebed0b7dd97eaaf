"""A test plugin: ``counter`` source — numbers 0..count-1, slow if asked, failing on cue.

``fail_at`` + ``failures``: the first ``failures`` runs (counted in the file
``attempts_file``, which survives retries and processes) raise a retriable error once
they reach record ``fail_at``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs

from pipeline_core import Batch, RetriableConnectorError, RuntimeContext, Source, hookimpl


@attrs.define(frozen=True, kw_only=True)
class CounterConfig:
    count: int
    batch: int = 10
    delay: float = 0.0
    fail_at: int | None = None
    failures: int = 0
    attempts_file: str | None = None


def _count_attempt(path: Path) -> int:
    attempt = int(path.read_text()) if path.exists() else 0
    path.write_text(str(attempt + 1))
    return attempt


class CounterSource(Source[CounterConfig]):
    type_name = "counter"
    config_cls = CounterConfig

    async def open(self, ctx: RuntimeContext, restored_position: dict[str, Any] | None) -> None:
        await super().open(ctx, restored_position)
        self.next = int(restored_position["next"]) if restored_position else 0
        self.attempt = 0
        if self.config.attempts_file:
            self.attempt = await asyncio.to_thread(_count_attempt, Path(self.config.attempts_file))

    async def read(self) -> AsyncIterator[Batch]:
        cfg = self.config
        while self.next < cfg.count:
            if cfg.fail_at is not None and self.next >= cfg.fail_at and self.attempt < cfg.failures:
                raise RetriableConnectorError(
                    f"counter: injected failure {self.attempt + 1} at record {self.next}"
                )
            end = min(cfg.count, self.next + cfg.batch)
            records = [{"n": n} for n in range(self.next, end)]
            self.next = end
            if cfg.delay:
                await asyncio.sleep(cfg.delay)
            yield Batch(records, {"next": self.next})


@hookimpl
def pipeline_register_sources(registry: Any) -> None:
    registry.add(CounterSource)
