"""The quickstart job written in Python instead of YAML.

python examples/python_job.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline_core import PipelineJob, Stream, run_job


def add_vat(order: dict[str, Any]) -> dict[str, Any]:
    vat = round(order["amount"] * 0.2, 2)
    return {**order, "vat": vat, "total": round(order["amount"] + vat, 2)}


def transform(orders: Stream) -> Stream:
    return (
        orders.filter(lambda o: o["status"] == "paid" and o["amount"] >= 20)
        .map(add_vat)
        .select("order_id", "customer", "amount", "vat", "total")
        .distinct(lambda o: o["order_id"])
    )


job = (
    PipelineJob.builder()
    .name("quickstart-orders-py")
    .description("Paid orders with VAT, written with the Python API")
    .source("file", path="examples/data/orders.jsonl")
    .transform(transform)
    .sink("file", path="examples/output/orders-py", max_records_per_file=1000)
    .config(on_error="skip", backpressure="BUFFER", source_batch_size=500)
    .build()
)

if __name__ == "__main__":
    result = asyncio.run(run_job(job))
    print(
        f"{result.status}: read {result.records_read}, wrote {result.records_written}, "
        f"failed {result.failed_records} in {result.duration_s:.2f} s"
    )
