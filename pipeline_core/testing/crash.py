"""Crash-test harness: run a job in a subprocess, SIGKILL it again and again, resume.

Connector authors use it to prove that a source resumes exactly and a sink neither loses
nor duplicates records across real kills::

    report = kill_and_resume(["pipeline-run", "run", "--resume", "job.yaml"], cwd=tmp,
                             kills=10, pending_checkpoints=lambda: count_pending(tmp))
    assert report.kills >= 10
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

__all__ = ["CrashReport", "attempt_recorded", "kill_and_resume"]


@attrs.define
class CrashReport:
    kills: int = 0
    kills_during_checkpoint: int = 0
    runs: int = 0


def kill_and_resume(
    command: Sequence[str],
    *,
    cwd: Path,
    kills: int,
    during_checkpoint: int = 0,
    pending_checkpoints: Callable[[], int] | None = None,
    delay: tuple[float, float] = (0.7, 1.6),
    seed: object = 0,
    env: dict[str, str] | None = None,
    started: Callable[[int], bool] | None = None,
    max_runs: int = 80,
    final_timeout: float = 180,
) -> CrashReport:
    """Start ``command`` (which must resume from its last checkpoint), SIGKILL it after a
    random delay — or, for ``during_checkpoint`` of the kills, as soon as
    ``pending_checkpoints()`` grows (a checkpoint has begun: give a counter of checkpoints
    begun, e.g. the highest checkpoint row id — a count of PENDING rows can fall when a
    resume closes the interrupted ones) — until ``kills`` kills are done; then let a last
    run finish and require exit status 0.

    With ``started``, the random delay counts from the moment ``started(run)`` (run = 1,
    2, …) first returns True — e.g. the run has recorded its attempt — instead of from the
    process start, so that on a slow or loaded machine no kill lands in the start-up and
    every killed run really resumed and did work. An exception from it counts as False
    (the database it reads may not exist yet)."""
    rnd = random.Random(str(seed))
    report = CrashReport()
    full_env = {**os.environ, **(env or {})}
    while True:
        report.runs += 1
        if report.runs > max_runs:
            raise AssertionError(f"the job did not finish in {max_runs} runs: {report}")
        proc = subprocess.Popen(
            list(command), cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        done_killing = report.kills >= kills and report.kills_during_checkpoint >= during_checkpoint
        if done_killing:
            code = proc.wait(timeout=final_timeout)
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            if code != 0:
                raise AssertionError(f"the final run failed ({code}): {stderr}")
            return report
        aim = (
            pending_checkpoints is not None
            and report.kills_during_checkpoint < during_checkpoint
            and report.kills % 3 == 2
        )
        before = pending_checkpoints() if aim and pending_checkpoints else 0
        wait = rnd.uniform(*delay)
        if started is not None:
            _wait_until_started(proc, started, report.runs)
        deadline = time.monotonic() + wait
        while proc.poll() is None:
            if aim and pending_checkpoints is not None:
                if pending_checkpoints() > before:
                    break
            elif time.monotonic() >= deadline:
                break
            time.sleep(0.002)
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(
                f"the job ended (exit {proc.returncode}) before kill {report.kills + 1}: "
                f"slow it down or lower the kill count. {stderr}"
            )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        report.kills += 1
        report.kills_during_checkpoint += int(aim)


def _wait_until_started(
    proc: subprocess.Popen[bytes], started: Callable[[int], bool], run: int, within: float = 120
) -> None:
    deadline = time.monotonic() + within
    while proc.poll() is None:
        try:
            if started(run):
                return
        except Exception:
            pass  # not yet readable: the run has not got that far
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run} did not start its work within {within:g} s")
        time.sleep(0.005)


def attempt_recorded(directory: Path) -> Callable[[int], bool]:
    """A ``started`` for :func:`kill_and_resume` when the job records into the default
    SQLite metadata database of ``directory`` (``.pipeline/pipeline.db``): run N has
    started its work once N attempts are recorded (each run of ``run --resume`` is one
    more attempt of the same execution)."""
    db = Path(directory) / ".pipeline" / "pipeline.db"

    def started(run: int) -> bool:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:  # never creates it
            (count,) = conn.execute(
                "SELECT count(*) FROM pipeline_job_execution_attempt"
            ).fetchone()
        return int(count) >= run

    return started
