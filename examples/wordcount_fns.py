"""Functions of examples/kafka_wordcount.yaml."""

from __future__ import annotations

from typing import Any


def words(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A Kafka record (with metadata) → one record per word, with its event time (the
    Kafka timestamp, ms) and partition (per-partition watermarks)."""
    return [
        {
            "word": w.strip(".,;:!?\"'()").lower(),
            "ts": record["timestamp"],
            "partition": record["partition"],
        }
        for w in (record["value"] or "").split()
        if w.strip(".,;:!?\"'()")
    ]


def count(acc: int, _record: dict[str, Any]) -> int:
    return acc + 1
