"""``pipeline-run executions``: recorded executions, newest first."""

from __future__ import annotations

import argparse
import textwrap

import attrs

from pipeline_core.cli.tables import fmt_time, print_json, print_table
from pipeline_core.runtime.lifecycle import ACTIVE
from pipeline_core.runtime.result import ExecutionStatus

__all__ = ["add_arguments"]


def run(args: argparse.Namespace) -> int:
    from pipeline_core.store import MetadataStore
    from pipeline_core.store.executions import owner_is_gone

    store = MetadataStore.open(args.database)
    if args.job is not None:
        store.registry.get(args.job)  # an unknown job is an error, not an empty listing
    records = store.executions.query(job=args.job, status=args.status, limit=args.limit)
    if args.json:
        print_json([attrs.asdict(r) for r in records])
        return 0
    print_table(
        "Executions",
        [
            "execution",
            "job",
            "v",
            "status",
            "trigger",
            "retries",
            "owner",
            "started (UTC)",
            "duration",
            "read",
            "failed",
            "error",
        ],
        [
            (
                r.execution_id[:12],
                r.job_name,
                r.job_version,
                r.status.value
                + (" (paused)" if r.paused else "")
                + (
                    " (owner gone)"
                    if r.status in ACTIVE and owner_is_gone(r.owner_instance)
                    else ""
                ),
                r.triggered_by,
                r.retry_count,
                r.owner_instance,
                fmt_time(r.start_time),
                f"{r.duration_ms / 1000:.1f} s" if r.duration_ms is not None else None,
                f"{r.processed_records:,}",
                f"{r.failed_records:,}",
                textwrap.shorten(r.error_message, 160, placeholder=" …")
                if r.error_message
                else None,
            )
            for r in records
        ],
        keep=["execution", "job", "v", "trigger", "retries", "started (UTC)", "read"],
        optional=[
            "owner",
            "v",
            "retries",
            "duration",
            "trigger",
            "failed",
            "error",
            "started (UTC)",
            "read",
        ],
    )
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job")
    p.add_argument("--status", type=ExecutionStatus, choices=list(ExecutionStatus))
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
