"""Entry point of ``pipeline-run``: one command, subcommands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pipeline_core import __version__
from pipeline_core.cli import connectors, run

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline-run", description="Run and inspect Pipeline Framework jobs."
    )
    parser.add_argument("--version", action="version", version=f"pipeline-run {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_parsers(sub)
    connectors.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
