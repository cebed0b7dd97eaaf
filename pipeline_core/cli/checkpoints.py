"""``pipeline-run checkpoints list | trigger | prune``."""

from __future__ import annotations

import argparse
from typing import Any

import attrs
import orjson

from pipeline_core.cli.output import out
from pipeline_core.cli.tables import fmt_time, print_json, print_table, short_path

__all__ = ["add_arguments"]


def _size(n: int | None) -> str | None:
    if n is None:
        return None
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return None


def _position(state_data: dict[str, Any]) -> str | None:
    """The source's position as ``key=value`` words (a path relative to the working
    directory when under it), so a narrow table wraps it between fields."""
    position = state_data.get("source_state")
    if not isinstance(position, dict):
        return None if position is None else str(position)
    words = []
    for key, value in position.items():
        if isinstance(value, str):
            text = short_path(value)
        elif isinstance(value, int | float | bool) or value is None:
            text = str(value)
        else:
            text = orjson.dumps(value, default=str).decode()
        words.append(f"{key}={text}")
    return " ".join(words) or None


def cmd_list(args: argparse.Namespace) -> int:
    from pipeline_core.store import MetadataStore

    store = MetadataStore.open(args.database)
    store.registry.get(args.job)  # a clear error for an unknown job
    rows = store.checkpoints.list(args.job)
    if args.json:
        print_json([attrs.asdict(r) for r in rows])
        return 0
    print_table(
        f"Checkpoints of {args.job}",
        ["execution", "id", "status", "size", "created (UTC)", "position"],
        [
            (
                r.execution_id[:12],
                r.checkpoint_id,
                r.status + (f" savepoint {r.savepoint_name}" if r.savepoint_name else ""),
                _size(r.storage_size_bytes),
                fmt_time(r.create_time),
                _position(r.state_data),
            )
            for r in rows
        ],
        keep=["execution", "id", "size", "created (UTC)"],
        optional=["size", "created (UTC)", "execution"],
    )
    return 0


def cmd_trigger(args: argparse.Namespace) -> int:
    from pipeline_core.store import MetadataStore

    store = MetadataStore.open(args.database)
    store.checkpoints.request(args.execution, savepoint=args.savepoint)
    what = f"savepoint {args.savepoint!r}" if args.savepoint else "a checkpoint"
    out.print(f"requested {what} of execution {args.execution} (taken within about a second)")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from pipeline_core.checkpoint.retention import prune
    from pipeline_core.checkpoint.storage import CheckpointStorage
    from pipeline_core.store import MetadataStore

    store = MetadataStore.open(args.database)
    config = store.registry.get(args.job).to_job().config
    deleted = prune(
        store.checkpoints,
        CheckpointStorage(args.checkpoint_url),
        args.job,
        keep=args.keep or config.checkpoint_retention,
        max_age=config.checkpoint_max_age,
    )
    out.print(f"deleted {len(deleted)} checkpoint{'s' * (len(deleted) != 1)} of {args.job}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    cs = p.add_subparsers(dest="checkpoints_command", required=True, metavar="COMMAND")
    c = cs.add_parser("list", help="a job's checkpoints, newest first")
    c.add_argument("job")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_list)
    c = cs.add_parser("trigger", help="ask a running execution for a checkpoint or savepoint")
    c.add_argument("execution")
    c.add_argument("--savepoint", metavar="NAME", help="take a named savepoint (never pruned)")
    c.set_defaults(func=cmd_trigger)
    c = cs.add_parser("prune", help="apply the job's retention now")
    c.add_argument("job")
    c.add_argument("--keep", type=int, help="override the job's checkpoint_retention")
    c.add_argument("--checkpoint-url", metavar="URL")
    c.set_defaults(func=cmd_prune)
