"""The Kafka benchmark's transform: the job's step functions, also called by the
hand-written loops in ``bench/kafka_passthrough.py``, so both do the same work."""

from __future__ import annotations

from typing import Any


def keep(r: dict[str, Any]) -> bool:
    return bool(r["n"] % 10 != 0)


def enrich(r: dict[str, Any]) -> dict[str, Any]:
    return {"n": r["n"], "user": r["user"], "total": r["amount"] * 1.19}
