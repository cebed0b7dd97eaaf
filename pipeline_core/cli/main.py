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
from pipeline_core.errors import ConfigError, PipelineError

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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except PipelineError as exc:
        print_error(exc)
        return 2 if isinstance(exc, ConfigError) else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
