"""``pipeline-run serve``: a runner instance (scheduler + executor) until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from pipeline_core.cli.output import err, print_error
from pipeline_core.config.converter import parse_duration
from pipeline_core.errors import PipelineError
from pipeline_core.plugins.manager import load_plugins
from pipeline_core.service import PipelineService
from pipeline_core.store import MetadataStore

__all__ = ["add_parser"]

log = logging.getLogger("pipeline_core.service")


async def _serve(args: argparse.Namespace) -> int:
    store = MetadataStore.open(args.database)
    plugins = load_plugins()
    for failure in plugins.failures:
        err.print(f"[yellow]warning:[/] {failure}", markup=True, soft_wrap=True)
    base_dir = None
    if args.jobs:
        report = await asyncio.to_thread(store.registry.import_directory, args.jobs, who="serve")
        for path, why in report.failed.items():
            err.print(f"[bold red]cannot import[/] {path}: {why}", markup=True, soft_wrap=True)
        err.print(
            f"jobs from {args.jobs}: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged",
            soft_wrap=True,
        )
        base_dir = args.jobs
    service = PipelineService(
        store,
        plugins,
        instance=args.instance,
        checkpoint_url=args.checkpoint_url,
        max_concurrent=args.max_concurrent,
        lease=parse_duration(args.lease),
        heartbeat_interval=parse_duration(args.heartbeat).total_seconds(),
        base_dir=base_dir,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    err.print(
        f"serving as [bold]{service.instance}[/] on {store.url} (SIGTERM stops gracefully)",
        markup=True,
        soft_wrap=True,
    )
    await stop.wait()
    err.print("stopping: running executions checkpoint and are handed over", soft_wrap=True)
    await service.stop(graceful=True)
    store.close()
    return 0


def serve(args: argparse.Namespace) -> int:
    if args.jobs:
        args.jobs = os.path.abspath(args.jobs)
    if args.verbose == 0:
        for name in ("pipeline_core.service", "pipeline_core.scheduler", "pipeline_core.executor"):
            logging.getLogger(name).setLevel(logging.INFO)
    try:
        return asyncio.run(_serve(args))
    except PipelineError as exc:
        print_error(exc)
        return 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the scheduler and executor until stopped")
    p.add_argument("--jobs", metavar="DIR", help="import the job files of DIR first")
    p.add_argument("--instance", metavar="NAME", help="this instance's name (default host:pid)")
    p.add_argument(
        "--checkpoint-url",
        metavar="URL",
        help="checkpoint storage shared by all instances (default: $PIPELINE_CHECKPOINT_URL, "
        "else .pipeline/checkpoints)",
    )
    p.add_argument("--max-concurrent", type=int, default=32, help="executions run at once here")
    p.add_argument(
        "--lease",
        default="15s",
        help="another instance takes over an execution whose heartbeat is older (default 15s)",
    )
    p.add_argument("--heartbeat", default="2s", help="heartbeat interval (default 2s)")
    p.set_defaults(func=serve)
