"""``pipeline-run validate JOBFILE``: everything a run checks before it starts, and with
``--connect`` whether the components reach what they read and write."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from rich.markup import escape

from pipeline_core.cli.output import err, out, print_error
from pipeline_core.cli.tables import print_json
from pipeline_core.config.secrets import redact
from pipeline_core.errors import ConfigError, PipelineError, Problem
from pipeline_core.model.loader import load_job_file
from pipeline_core.plugins.manager import Plugins, load_plugins
from pipeline_core.runtime.prepare import PreparedJob, prepare

__all__ = ["add_arguments", "describe", "load_job"]

EXIT_CONFIG = 2


def load_job(path: str, *, run: bool) -> tuple[Plugins, PreparedJob]:
    """The job file, checked; with ``run``, its secret references resolved (this process
    runs it) — ``validate`` never resolves one."""
    plugins = load_plugins()
    for failure in plugins.failures:
        err.print(f"[yellow]warning:[/] {escape(str(failure))}", markup=True, soft_wrap=True)
    job = load_job_file(path)
    return plugins, prepare(job, plugins, resolve_secrets=run)


def describe(prepared: PreparedJob) -> str:
    steps = len(prepared.stream)
    return f"{prepared.source_label} → {steps} step{'s' * (steps != 1)} → {prepared.sink_label}"


def _has_references(spec: Any) -> bool:
    return "${" in repr(getattr(spec, "config", None))


def _check_inputs(prepared: PreparedJob, connect: bool) -> None:
    """What the source can see is wrong without reading (an input path that does not
    exist); with ``connect``, whether the source, sink and dead-letter sink reach what
    they read and write. Without ``connect`` a component whose config holds a secret
    reference is not asked (``validate`` resolves no secret); with it, the references
    are resolved as a run would, and one that does not resolve is reported."""
    job = prepared.job
    problems: list[Problem] = []
    components: list[tuple[Any, Any, str]] = [
        (job.source, prepared.make_source, prepared.source_label),
        (job.sink, prepared.make_sink, prepared.sink_label),
    ]
    if prepared.make_dead_letter is not None:
        components.append((job.config.dead_letter, prepared.make_dead_letter, "dead_letter sink"))
    for index, (spec, make, label) in enumerate(components):
        if not connect and (index > 0 or _has_references(spec)):
            continue
        try:
            component = make()
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        messages = component.check() if index == 0 else []
        if connect:
            logging.disable(logging.ERROR)  # client libraries log each refused connection
            try:
                unreachable = asyncio.run(component.check_connection())
            finally:
                logging.disable(logging.NOTSET)
            messages += [unreachable] if unreachable else []
        # with --connect the references are resolved, and a client's message may quote
        # the URL it could not reach
        problems += [Problem(redact(m), job=job.name, component=label) for m in messages]
    if problems:
        raise ConfigError(problems)


def validate(args: argparse.Namespace) -> int:
    try:
        _plugins, prepared = load_job(args.jobfile, run=False)
        _check_inputs(prepared, args.connect)
    except PipelineError as exc:
        if args.json:
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            errors = [redact(str(p)) for p in problems]
            print_json({"ok": False, "file": args.jobfile, "errors": errors})
        else:
            print_error(exc)
        return EXIT_CONFIG
    if args.json:
        print_json(
            {
                "ok": True,
                "file": args.jobfile,
                "job": prepared.job.name,
                "source": prepared.source_label,
                "steps": len(prepared.stream),
                "sink": prepared.sink_label,
                "errors": [],
            }
        )
    else:
        out.print(f"ok: job {prepared.job.name!r}: {describe(prepared)}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("jobfile")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument(
        "--connect",
        action="store_true",
        help="also connect to what the source, sink and dead-letter sink use (resolves "
        "the job's secret references, as a run would)",
    )
    p.set_defaults(func=validate)
