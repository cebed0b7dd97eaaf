"""MemoryTrigger: an in-process EVENT trigger for tests (``event_trigger: memory``)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import attrs

from pipeline_core.hookspecs import hookimpl
from pipeline_core.plugins.registry import TypeRegistry
from pipeline_core.triggers import EventMessage, EventTrigger, FireCallback

__all__ = ["MemoryTrigger", "MemoryTriggerConfig"]


@attrs.define(frozen=True, kw_only=True)
class MemoryTriggerConfig:
    pass


class MemoryTrigger(EventTrigger[MemoryTriggerConfig]):
    """``MemoryTrigger.publish(topic, payload)`` fires every job whose EVENT schedule
    listens on ``topic`` in this process."""

    type_name = "memory"
    config_cls = MemoryTriggerConfig
    _queues: ClassVar[dict[str, list[asyncio.Queue[bytes]]]] = {}

    def __init__(self, config: MemoryTriggerConfig, topic: str) -> None:
        super().__init__(config, topic)
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.fired = 0

    @classmethod
    def publish(cls, topic: str, payload: bytes = b"") -> int:
        """Deliver to the listeners of ``topic``; returns how many there were."""
        listeners = cls._queues.get(topic, [])
        for q in listeners:
            q.put_nowait(payload)
        return len(listeners)

    async def run(self, fire: FireCallback) -> None:
        self._queues.setdefault(self.topic, []).append(self.queue)
        try:
            while True:
                payload = await self.queue.get()
                self.fired += 1
                await fire(EventMessage(topic=self.topic, payload=payload, where=f"#{self.fired}"))
        finally:
            await self.close()

    async def close(self) -> None:
        listeners = self._queues.get(self.topic, [])
        if self.queue in listeners:
            listeners.remove(self.queue)


@hookimpl
def pipeline_register_triggers(registry: TypeRegistry[Any]) -> None:
    registry.add(MemoryTrigger)
