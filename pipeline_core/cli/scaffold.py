"""``pipeline-run new-connector NAME``."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline_core.cli.output import out
from pipeline_core.scaffold import create_connector

__all__ = ["add_arguments"]


def cmd(args: argparse.Namespace) -> int:
    root = create_connector(args.name, Path(args.dir))
    out.print(f"created {root}", soft_wrap=True)
    out.print(f"next: pip install -e '{root}[test]' && pytest {root}", soft_wrap=True, markup=False)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="type name, e.g. 'redis' (package pipeline_connector_redis)")
    p.add_argument("--dir", default=".", help="where to create it (default: here)")
    p.set_defaults(func=cmd)
