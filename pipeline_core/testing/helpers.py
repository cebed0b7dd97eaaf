"""Running jobs from tests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from pipeline_core.model.job import PipelineJob
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.runtime.runner import run_job

__all__ = ["assert_options_documented", "run", "wait_until"]


def run(
    job: PipelineJob,
    plugins: Plugins | None = None,
    *,
    expect: ExecutionStatus | None = ExecutionStatus.COMPLETED,
    **kwargs: Any,
) -> JobResult:
    """Run ``job`` to its end in a fresh event loop.

    With ``expect`` set (the default: COMPLETED), a different final status raises the
    job's own exception (or an AssertionError), so a failing job fails the test loudly.
    """
    result = asyncio.run(run_job(job, plugins, **kwargs))
    if expect is not None and result.status is not expect:
        if result.exception is not None:
            raise result.exception
        raise AssertionError(f"job ended {result.status}, expected {expect}: {result.error}")
    return result


async def wait_until(
    predicate: Callable[[], Any], within: float = 30.0, what: str = "the condition"
) -> None:
    """Poll ``predicate`` (sync: run in a thread, as it usually queries a database or a
    broker; or async) every 50 ms until it is truthy; AssertionError after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    is_async = inspect.iscoroutinefunction(predicate)
    while True:
        value = await predicate() if is_async else await asyncio.to_thread(predicate)
        if inspect.isawaitable(value):  # a lambda around a coroutine function
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.05)


def assert_options_documented(text: str, config_cls: type) -> None:
    """Every field of ``config_cls`` has a ``| `name` |`` table row in ``text`` that shows
    its default (``(required)`` for fields without one) — a connector's docs cannot drift
    from its config class."""
    import attrs

    for field in attrs.fields(config_cls):
        row = next((x for x in text.splitlines() if x.startswith(f"| `{field.name}` |")), None)
        assert row is not None, f"{config_cls.__name__}.{field.name} is not documented"
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if default is attrs.NOTHING:
            assert "(required)" in row, row
        elif isinstance(default, bool):
            assert f"`{str(default).lower()}`" in row, row
        elif isinstance(default, int | float | str) and default != "":
            assert str(default) in row, row
