"""What a failed record leaves behind: counts under every policy, and error messages
that show at most a short excerpt of the record — or none (``record_in_errors: false``)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import orjson

from pipeline_core import Batch, FailedRecord, OnError, PipelineJob, RecordError, Source
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.testing import ListSink, MemorySource, run
from tests.conftest import pipeline_run

SECRET = "4111-1111-1111-1111"


def invert(x: int) -> float:
    return 1 / x


def leak(record: dict[str, Any]) -> int:
    return int(record["card"])  # ValueError: invalid literal ... '4111-...'


def job(
    records: list[Any], fn: Any, sink: ListSink, dead: ListSink | None = None, **config: Any
) -> PipelineJob:
    built = (
        PipelineJob.builder()
        .name("errors")
        .source(MemorySource.of(records, batch_size=4))
        .transform(lambda s: s.map(fn, name="step"))
        .sink(sink)
        .config(**config)
        .build()
    )
    if dead is not None:  # an instance works for a single run
        built = attrs.evolve(
            built, config=attrs.evolve(built.config, on_error=OnError.DEAD_LETTER, dead_letter=dead)
        )
    return built


@attrs.define(frozen=True, kw_only=True)
class _BadInputConfig:
    pass


class BadInputSource(Source[_BadInputConfig]):
    """Two good records, then one the source could not decode."""

    type_name = "bad-input"
    config_cls = _BadInputConfig

    async def read(self) -> AsyncIterator[Batch]:
        bad = FailedRecord(f'{{"card": "{SECRET}"'.encode(), "invalid JSON: truncated", "in:3")
        yield Batch([{"n": 1}, {"n": 2}], {"line": 3}, [bad])
        yield Batch([{"n": 4}], {"line": 4})


def source_job(sink: ListSink, **config: Any) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name("decode")
        .source(BadInputSource(_BadInputConfig()))
        .sink(sink)
        .config(**config)
        .build()
    )


# --- failed_records under on_error: fail -----------------------------------------------


def test_fail_counts_the_record_it_fails_on() -> None:
    metrics = RunMetrics()
    result = run(job([1, 2, 0, 4, 0], invert, ListSink()), expect=None, metrics=metrics)
    assert result.status.value == "FAILED"
    assert isinstance(result.exception, RecordError)
    assert result.failed_records == 1
    assert metrics.failed_records == 1


def test_fail_counts_a_record_the_source_could_not_decode() -> None:
    result = run(source_job(ListSink()), expect=None)
    assert result.status.value == "FAILED"
    assert result.failed_records == 1
    assert result.error is not None and result.error.startswith("in:3: record b'{")


def test_skip_and_dead_letter_still_count_every_failure() -> None:
    result = run(job([1, 0, 2, 0, 0], invert, ListSink(), on_error="skip"))
    assert result.failed_records == 3


# --- record contents in error messages ---------------------------------------------------


def fail_long(record: str) -> str:
    raise ValueError(f"cannot use {record}")


def test_long_records_are_cut_short_in_error_messages() -> None:
    record = "x" * 10_000
    result = run(job([record], fail_long, ListSink()), expect=None)
    assert result.error is not None
    assert result.error.startswith("step: record 'xxx")
    assert len(result.error) < 450
    shown_record, _, cause = result.error.partition(" failed: ")
    assert shown_record.endswith("...")
    assert cause.startswith("ValueError: cannot use xxx") and cause.endswith("...")


def test_long_exception_messages_are_cut_short_in_dead_letters() -> None:
    dead = ListSink()
    run(job(["y" * 5_000], fail_long, ListSink(), dead))
    [letter] = dead.committed
    assert letter["record"] == "y" * 5_000  # the dead-letter sink gets the record itself
    assert letter["error"].startswith("ValueError: cannot use yyy")
    assert letter["error"].endswith("...") and len(letter["error"]) <= 200


def test_record_in_errors_false_fail() -> None:
    result = run(job([{"card": SECRET}], leak, ListSink(), record_in_errors=False), expect=None)
    assert result.error == "step: record failed: ValueError"
    assert result.failed_records == 1
    # the traceback still shows where it failed, not what it failed on
    assert result.error_trace is not None
    assert "in leak" in result.error_trace
    assert SECRET not in result.error_trace


def test_record_in_errors_false_dead_letter() -> None:
    dead = ListSink()
    metrics = RunMetrics()
    run(
        job([{"card": "1"}, {"card": SECRET}], leak, ListSink(), dead, record_in_errors=False),
        metrics=metrics,
    )
    assert dead.committed == [{"where": "step", "error": "ValueError", "record": {"card": SECRET}}]
    assert metrics.first_failure == "step: ValueError"


def test_failures_in_worker_processes_follow_record_in_errors() -> None:
    def cpu_job(dead: ListSink, show: bool) -> PipelineJob:
        built = (
            PipelineJob.builder()
            .name("cpu")
            .source(MemorySource.of([1, 0, 2]))
            .transform(lambda s: s.map(invert, name="step", cpu=True))
            .sink(ListSink())
            .config(parallelism=2, record_in_errors=show)
            .build()
        )
        return attrs.evolve(
            built, config=attrs.evolve(built.config, on_error=OnError.DEAD_LETTER, dead_letter=dead)
        )

    shown, hidden = ListSink(), ListSink()
    run(cpu_job(shown, True))
    run(cpu_job(hidden, False))
    assert shown.committed == [
        {"where": "step", "error": "ZeroDivisionError: division by zero", "record": 0}
    ]
    assert hidden.committed == [{"where": "step", "error": "ZeroDivisionError", "record": 0}]


def test_record_in_errors_false_for_a_record_the_source_could_not_decode() -> None:
    result = run(source_job(ListSink(), record_in_errors=False), expect=None)
    assert result.error == "in:3: record failed: invalid JSON: truncated"
    assert SECRET not in (result.error_trace or "")


def test_record_in_errors_defaults_to_true() -> None:
    result = run(job([0], invert, ListSink()), expect=None)
    assert result.error == "step: record 0 failed: ZeroDivisionError: division by zero"


# --- the stored execution row --------------------------------------------------------------

FNS = """
def card(record):
    return {"n": record["n"], "card": int(record["card"])}
"""

JOB = """\
name: cards
source: {type: file, config: {path: in.jsonl}}
transform:
  - {type: map, function: "fns:card"}
sink: {type: file, config: {path: out}}
config:
  on_error: fail
  record_in_errors: false
"""


def test_stored_error_of_a_failed_run_has_the_count_and_no_record(tmp_path: Path) -> None:
    rows = [{"n": i, "card": str(i)} for i in range(50)]
    rows[17]["card"] = SECRET
    (tmp_path / "in.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    (tmp_path / "fns.py").write_text(FNS)
    (tmp_path / "job.yaml").write_text(JOB)

    done = pipeline_run(
        "run", "--no-progress", "job.yaml", cwd=tmp_path, env={"PIPELINE_DATABASE_URL": ""}
    )

    assert done.returncode != 0
    assert SECRET not in done.stdout + done.stderr
    with sqlite3.connect(os.path.join(tmp_path, ".pipeline", "pipeline.db")) as conn:
        [(status, failed, message, trace)] = conn.execute(
            "SELECT status, failed_records, error_message, error_stack_trace"
            " FROM pipeline_job_execution"
        ).fetchall()
    assert (status, failed) == ("FAILED", 1)
    assert message.endswith(": record failed: ValueError")
    assert SECRET not in message and SECRET not in (trace or "")
