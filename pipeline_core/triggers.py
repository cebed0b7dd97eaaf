"""EventTrigger: the base class connector plugins implement for EVENT schedules.

A trigger listens to one topic/queue and calls ``fire`` for each message; the scheduler
then starts the job. Acknowledge the message only after ``fire`` returned (the execution
is recorded by then), so a crash in between redelivers it instead of losing the run.
With several runner instances, each listens with the same group/queue, so the broker
hands every message to exactly one of them.

Register it from the plugin module::

    @hookimpl
    def pipeline_register_triggers(registry):
        registry.add(RabbitMQTrigger)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, TypeVar

import attrs

__all__ = ["EventMessage", "EventTrigger", "FireCallback"]

C = TypeVar("C")


@attrs.frozen(kw_only=True)
class EventMessage:
    """What arrived: the payload (bytes) and broker details for the execution's history."""

    topic: str
    payload: bytes = b""
    headers: dict[str, Any] = attrs.field(factory=dict)
    #: e.g. "partition 0 offset 17" or "delivery tag 3"
    where: str = ""


FireCallback = Callable[[EventMessage], Awaitable[None]]


class EventTrigger(Generic[C]):
    """One listener: ``type_name`` (what a schedule's ``event_trigger`` names) and
    ``config_cls`` (its ``event_config`` options, structured strictly like a source's)."""

    type_name: ClassVar[str]
    config_cls: ClassVar[type[Any]]

    def __init__(self, config: C, topic: str) -> None:
        self.config = config
        self.topic = topic

    async def run(self, fire: FireCallback) -> None:
        """Listen until cancelled, awaiting ``fire(message)`` for each message."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release the connection. Idempotent."""
