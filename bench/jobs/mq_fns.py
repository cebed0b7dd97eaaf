"""The RabbitMQ benchmark's transform: the job's step function, also called by the
hand-written pika loop in ``bench/rabbitmq_passthrough.py``."""

from __future__ import annotations

from typing import Any


def transform(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "user": record["user"], "total": record["amount"] * 1.19}
