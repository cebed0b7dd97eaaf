"""Shared console helpers: one line per problem, no tracebacks."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from pipeline_core.errors import ConfigError, PipelineError

__all__ = ["err", "out", "print_error"]


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit 1; the command line ends a closed stdout one way for every
        # command (cli/main.py)
        raise BrokenPipeError


out = _Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)


def print_error(exc: BaseException) -> None:
    """Print an error as the CLI does: ``error: <one line per problem>`` — redacted (a
    command that resolved secrets shows their references)."""
    from pipeline_core.config.secrets import redact  # cattrs: not for `pipeline-run --help`

    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            text = escape(redact(str(problem)))
            err.print(f"[bold red]error:[/] {text}", markup=True, soft_wrap=True)
    elif isinstance(exc, PipelineError):
        err.print(f"[bold red]error:[/] {escape(redact(str(exc)))}", markup=True, soft_wrap=True)
    else:
        err.print(
            f"[bold red]error:[/] {type(exc).__name__}: {escape(redact(str(exc)))}",
            markup=True,
            soft_wrap=True,
        )
