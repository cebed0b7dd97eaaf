"""Capturing an execution's log lines: bounded per interval, cut, redacted, and kept
apart per execution when several run in one process."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from pipeline_core.config.secrets import resolve_references
from pipeline_core.service.logs import LogBuffer, LogSettings, LogShipper, capture_here

log = logging.getLogger("tests.service.logs")


def test_the_buffer_keeps_the_newest_and_says_how_many_it_dropped() -> None:
    buffer = LogBuffer(LogSettings(rate=10, interval=1.0))
    with capture_here(buffer):
        for i in range(1000):
            log.warning("record %d", i)
    lines = buffer.take()
    assert len(lines) == 11
    assert [line[3] for line in lines[:-1]] == [f"record {i}" for i in range(990, 1000)]
    assert lines[-1][1:3] == ("WARNING", "pipeline_core.logs")
    assert lines[-1][3].startswith("990 earlier log lines not kept: more than 10 a second")
    assert buffer.take() == []  # taken: the next interval starts empty


def test_lines_are_cut_and_carry_their_traceback() -> None:
    buffer = LogBuffer(LogSettings(line_chars=300))
    with capture_here(buffer):
        log.warning("x" * 500)
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("it failed")
        log.debug("below the level: not kept")
    long, failed = buffer.take()
    assert long[3] == "x" * 300 + "… (200 more characters)"
    assert failed[1] == "ERROR"
    assert failed[3].startswith("it failed\nTraceback") and "ValueError: boom" in failed[3]


def test_a_secret_never_reaches_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGS_TEST_SECRET", "hunter2-logs-secret")
    buffer = LogBuffer(LogSettings())
    with capture_here(buffer):
        # made before the value is resolved: the record factory could not redact it
        log.warning("early: %s", os.environ["LOGS_TEST_SECRET"])
        resolve_references("${env:LOGS_TEST_SECRET}")
        log.warning("late: %s", os.environ["LOGS_TEST_SECRET"])
        try:
            raise RuntimeError(f"connect with {os.environ['LOGS_TEST_SECRET']}")
        except RuntimeError:
            log.exception("failed")
    text = "\n".join(line[3] for line in buffer.take())
    assert "hunter2-logs-secret" not in text
    assert text.count("${env:LOGS_TEST_SECRET}") == 3  # early, late, in the traceback


async def test_each_execution_gets_its_own_lines_in_batches() -> None:
    settings = LogSettings(interval=0.05, rate=1000)
    batches: dict[str, list[list[str]]] = {"a": [], "b": []}

    async def execution(name: str) -> None:
        buffer = LogBuffer(settings)
        shipper = LogShipper(buffer, lambda lines: batches[name].append([x[3] for x in lines]))
        with capture_here(buffer):
            shipper.start()
            for i in range(3):
                log.warning("%s %d", name, i)
                await asyncio.to_thread(log.warning, "%s in a thread %d", name, i)
                await asyncio.sleep(0.01)
            await shipper.close()

    log.warning("outside any execution")
    await asyncio.gather(execution("a"), execution("b"))
    for name in ("a", "b"):
        got = [text for batch in batches[name] for text in batch]
        assert got == [t for i in range(3) for t in (f"{name} {i}", f"{name} in a thread {i}")]
        assert all(batches[name])  # no empty batch is shipped
