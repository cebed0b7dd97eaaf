"""``pipeline-run serve``: a runner instance (scheduler + executor) until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from pipeline_core.cli.output import err, print_error
from pipeline_core.config.converter import parse_duration
from pipeline_core.errors import PipelineError
from pipeline_core.plugins.manager import load_plugins
from pipeline_core.runtime.validation import job_validator

if TYPE_CHECKING:  # the service and store load only when serve runs
    from pipeline_core.service import PipelineService

__all__ = ["add_arguments"]

log = logging.getLogger("pipeline_core.service")


async def _serve(args: argparse.Namespace) -> int:
    from pipeline_core.service import PipelineService
    from pipeline_core.store import MetadataStore

    store = MetadataStore.open(args.database)
    plugins = load_plugins()
    store.registry.validator = job_validator(plugins)  # --jobs files: the API's checks
    for failure in plugins.failures:
        err.print(f"[yellow]warning:[/] {escape(str(failure))}", markup=True, soft_wrap=True)
    base_dir = None
    if args.jobs:
        report = await asyncio.to_thread(store.registry.import_directory, args.jobs, who="serve")
        for path, why in report.failed.items():
            err.print(
                f"[bold red]cannot import[/] {escape(f'{path}: {why}')}",
                markup=True,
                soft_wrap=True,
            )
        err.print(
            f"jobs from {args.jobs}: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged",
            soft_wrap=True,
        )
        base_dir = await asyncio.to_thread(os.path.abspath, args.jobs)  # workers resolve from it
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
    http = None if args.no_api else await _start_http(service, args)
    await service.start()
    where = f"; API and dashboard on http://{args.host}:{args.port}/" if http else ""
    err.print(
        f"serving as [bold]{service.instance}[/] on {store.url}{where} (SIGTERM stops gracefully)",
        markup=True,
        soft_wrap=True,
    )
    await stop.wait()
    err.print("stopping: running executions checkpoint and are handed over", soft_wrap=True)
    if http is not None:
        server, task = http
        server.should_exit = True
        await task
        await server.shutdown()
    await service.stop(graceful=True)
    store.close()
    return 0


def _tokens(args: argparse.Namespace) -> Any:
    """Configured tokens; else (first start) a generated admin token, reads open; or, with
    ``--no-auth``, nothing at all (said loudly)."""
    import attrs

    from pipeline_core.api import Tokens
    from pipeline_core.api.auth import generated_admin_token

    tokens = Tokens.from_env()
    if args.no_auth:
        err.print(
            f"[bold yellow]warning:[/] --no-auth: anyone who reaches {args.host}:{args.port} "
            "can change and start jobs (for local experiments only)",
            markup=True,
            soft_wrap=True,
        )
        return attrs.evolve(tokens, no_auth=True)
    if tokens.enabled:
        return tokens
    path = Path(os.environ.get("PIPELINE_API_TOKEN_PATH") or Path.cwd() / ".pipeline" / "api-token")
    token = generated_admin_token(path)
    err.print(
        f"no API tokens configured: reads are open, changes need the admin token in {path} "
        "(mode 0600; send Authorization: Bearer TOKEN, or paste it into the dashboard)",
        soft_wrap=True,
    )
    return Tokens(frozenset({token}), open_reads=True, generated_at=str(path))


async def _start_http(service: PipelineService, args: argparse.Namespace) -> tuple[Any, Any]:
    """uvicorn on this event loop (its own signal handling is not used: SIGTERM stops the
    service, which stops the server)."""
    import uvicorn

    from pipeline_core.api import create_app
    from pipeline_core.api.security import SecurityPolicy

    host, port = args.host, args.port
    tokens = _tokens(args)
    policy = SecurityPolicy.from_env(bind_host=host, extra_hosts=args.allowed_host)
    if policy.any_host:
        log.warning("the Host allow-list is off ('*'): DNS rebinding can reach the API")
    elif host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"API answers to the host names: {', '.join(sorted(policy.allowed_hosts))} "
            "(add the names clients use with --allowed-host or PIPELINE_API_ALLOWED_HOSTS)",
            soft_wrap=True,
        )
    app = create_app(service, tokens=tokens, metrics=service.metrics, policy=policy)
    # An open live-update stream (a dashboard) is a response that never finishes: bound
    # the wait for open responses at shutdown, or SIGTERM waits for the stream's end (20 s)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    config.load()
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup()
    except SystemExit:
        raise PipelineError(f"cannot listen on {host}:{port} (in use?)") from None
    if server.should_exit:
        raise PipelineError(f"cannot listen on {host}:{port} (in use?)")
    return server, asyncio.create_task(server.main_loop(), name="http")


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", metavar="DIR", help="import the job files of DIR first")
    p.add_argument("--instance", metavar="NAME", help="this instance's name (default host:pid)")
    p.add_argument(
        "--checkpoint-url",
        metavar="URL",
        help="checkpoint storage shared by all instances (default: $PIPELINE_CHECKPOINT_URL, "
        "else .pipeline/checkpoints)",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="worker processes, i.e. executions run at once here (default: one per core)",
    )
    p.add_argument(
        "--lease",
        default="15s",
        help="another instance takes over an execution whose heartbeat is older (default 15s)",
    )
    p.add_argument("--heartbeat", default="2s", help="heartbeat interval (default 2s)")
    p.add_argument("--host", default="127.0.0.1", help="API address (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8080, help="API port (default 8080)")
    p.add_argument("--no-api", action="store_true", help="no REST API, metrics or dashboard")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients use to reach the API (repeatable; loopback names and the "
        "--host address are always allowed; '*' turns the check off)",
    )
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="no tokens at all: anyone who reaches the API can change jobs (local "
        "experiments only; by default an admin token is generated)",
    )
    p.set_defaults(func=serve)
