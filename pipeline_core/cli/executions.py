"""``pipeline-run executions``: recorded executions, newest first; ``executions logs ID``:
the log lines kept of one."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import TYPE_CHECKING

import attrs

from pipeline_core.cli.tables import fmt_time, print_json, print_table
from pipeline_core.runtime.lifecycle import ACTIVE
from pipeline_core.runtime.result import ExecutionStatus

if TYPE_CHECKING:
    from pipeline_core.store import MetadataStore

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


def _execution_id(store: MetadataStore, given: str) -> str:
    """``given``, or the one execution whose id starts with it (the listing shows 12
    characters); ExecutionNotFound if none or several do."""
    from sqlalchemy import select

    from pipeline_core.errors import ExecutionNotFound
    from pipeline_core.store import models

    x = models.Execution
    with store.engine.connect() as conn:
        if conn.execute(select(x.id).where(x.execution_id == given)).first():
            return given
        like = given.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = conn.execute(
            select(x.execution_id).where(x.execution_id.like(like, escape="\\")).limit(2)
        ).all()
    if len(found) == 1:
        return str(found[0][0])
    raise ExecutionNotFound(
        f"several executions start with {given!r}" if found else f"no execution {given!r}"
    )


def logs(args: argparse.Namespace) -> int:
    from pipeline_core.store import MetadataStore

    store = MetadataStore.open(args.database)
    tail = store.logs.tail(_execution_id(store, args.execution), after=args.after, limit=args.limit)
    if args.json:
        print_json(
            {
                "execution_id": tail.execution_id,
                "last_seq": tail.last_seq,
                "lines": [attrs.asdict(r) for r in tail.lines],
            }
        )
        return 0
    # as a log file reads (for grep and less): one line per record, never cut or wrapped
    for r in tail.lines:
        attempt = f"#{r.attempt} " if r.attempt > 1 else ""
        stamp = r.time.isoformat(sep=" ", timespec="milliseconds")
        sys.stdout.write(f"{stamp} {attempt}{r.level} {r.logger}: {r.message}\n")
    if not tail.lines:
        sys.stderr.write(f"execution {tail.execution_id} has no log lines kept\n")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job")
    p.add_argument("--status", type=ExecutionStatus, choices=list(ExecutionStatus))
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    sub = p.add_subparsers(dest="executions_command", required=False, metavar="COMMAND")
    c = sub.add_parser("logs", help="the log lines kept of an execution (the newest), oldest first")
    c.add_argument("execution", help="the execution's id, or the start of it")
    c.add_argument("--after", type=int, metavar="SEQ", help="only the lines after this seq")
    c.add_argument("--limit", type=int, default=500, help="at most this many lines (500)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=logs)
