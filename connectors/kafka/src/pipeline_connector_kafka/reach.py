"""``validate --connect`` for the Kafka source and sink: the bootstrap servers answer a
metadata request, over the security settings the component would use."""

from __future__ import annotations

import inspect
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

__all__ = ["reachable"]

#: what of a consumer's or producer's options a bare client takes (the security settings)
_CLIENT_OPTIONS = set(inspect.signature(AIOKafkaClient.__init__).parameters) - {"self", "loop"}


async def reachable(bootstrap_servers: str, options: dict[str, Any]) -> str | None:
    """None when a bootstrap server answers, else why not in one line."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        **{k: v for k, v in options.items() if k in _CLIENT_OPTIONS},
    )
    try:
        await client.bootstrap()
    except KafkaError as exc:
        return f"cannot reach Kafka at {bootstrap_servers}: {exc}"
    finally:
        await client.close()
    return None
