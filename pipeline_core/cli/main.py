"""Entry point of ``pipeline-run``: one command, subcommands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pipeline_core import __version__
from pipeline_core.cli import (
    checkpoints,
    connectors,
    db,
    executions,
    jobs,
    run,
    scaffold,
    serve,
)
from pipeline_core.cli.output import print_error
from pipeline_core.errors import ConfigError, JobNotFound, PipelineError, did_you_mean

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline-run", description="Run and inspect Pipeline Framework jobs."
    )
    parser.add_argument("--version", action="version", version=f"pipeline-run {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument(
        "--database",
        metavar="URL",
        help="metadata database URL (default: $PIPELINE_DATABASE_URL, else SQLite in .pipeline/)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_parsers(sub)
    connectors.add_parser(sub)
    jobs.add_parser(sub)
    executions.add_parser(sub)
    checkpoints.add_parser(sub)
    db.add_parser(sub)
    serve.add_parser(sub)
    scaffold.add_parser(sub)
    return parser


def _similar_jobs(args: argparse.Namespace, message: str) -> str:
    """A "did you mean" for a mistyped job name: the registered names close to it."""
    name = getattr(args, "name", None) or getattr(args, "job", None)
    if not isinstance(name, str) or repr(name) not in message:
        return ""
    from pipeline_core.store import MetadataStore

    try:
        names = [d.job_name for d in MetadataStore.open(args.database).registry.list_all()]
    except PipelineError:
        return ""
    return did_you_mean(name, [n for n in names if n != name])  # a missing version: none


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except JobNotFound as exc:
        print_error(JobNotFound(f"{exc}{_similar_jobs(args, str(exc))}"))
        return 1
    except PipelineError as exc:
        print_error(exc)
        return 2 if isinstance(exc, ConfigError) else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
