"""Whole-process A/B measurement, as a user meets it.

Each contender is a command (``pipeline-run run job.yaml``, ``python loop.py``): it is
started as a fresh process, so its time includes the interpreter's start-up and its
imports, and its peak RSS is its own (``os.wait4``). Contenders are interleaved round by
round, so that a noisy neighbour slows every contender alike, and each run's output is
checked by the caller's ``verify`` before its time counts.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent


@attrs.define
class Contender:
    name: str
    argv: Sequence[str]
    #: Called before each run (truncate the output table, remove the output folder…).
    prepare: Callable[[], None] = lambda: None
    #: Called after each run; returns the records the run delivered (checked by the caller).
    verify: Callable[[], int] = lambda: 0
    env: dict[str, str] = attrs.Factory(dict)
    cwd: Path | None = None
    #: For a contender that never ends by itself (a STREAMING job): polled while it runs;
    #: once it returns True the process gets SIGTERM (a job checkpoints, then stops), and
    #: the time counts until it has exited.
    stop_when: Callable[[], bool] | None = None


@attrs.define
class Run:
    elapsed: float
    #: User + system CPU seconds of the process (less sensitive to a busy machine).
    cpu: float
    rss_mb: float
    records: int


#: GNU time reports the command's own peak RSS. ``ru_maxrss`` of a child forked from this
#: process would include this process's size at the fork (Linux carries the high-water
#: mark across exec), which would make a small loop look as big as the harness.
GNU_TIME = "/usr/bin/time"


def run_once(c: Contender) -> Run:
    c.prepare()
    env = {**os.environ, **c.env}
    argv = list(c.argv)
    stats = None
    if os.path.exists(GNU_TIME):
        fd, stats = tempfile.mkstemp(prefix="bench-time-")
        os.close(fd)
        argv = [GNU_TIME, "-f", "%M %U %S", "-o", stats, *argv]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=c.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    stopped = c.stop_when is not None and _stop_when_done(
        proc, c.stop_when, wrapped=stats is not None
    )
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    # a job stopped by SIGTERM exits 128 + 15 after its checkpoint, as documented
    if proc.returncode != 0 and not (stopped and proc.returncode == 128 + signal.SIGTERM):
        raise SystemExit(
            f"{c.name}: {' '.join(c.argv)} exited {proc.returncode}:\n{err.decode()[-3000:]}"
        )
    rss_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    if stats is not None:
        with open(stats) as f:
            last = f.read().split("\n")[-2].split()  # after any "Command exited…" line
        os.unlink(stats)
        rss_kb, cpu = int(last[0]), float(last[1]) + float(last[2])
    return Run(elapsed, cpu, rss_kb / 1024, c.verify())


def _stop_when_done(proc: subprocess.Popen[bytes], done: Callable[[], bool], wrapped: bool) -> bool:
    """SIGTERM the contender (not GNU time around it, which would die without its
    report) once ``done()``; stderr is read afterwards, so it must stay small meanwhile.
    False if it ended by itself first."""
    while proc.poll() is None:
        if done():
            pid = proc.pid
            if wrapped:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    pid = int(f.read().split()[0])
            os.kill(pid, signal.SIGTERM)
            return True
        time.sleep(0.05)
    return False


def measure(contenders: Sequence[Contender], repeat: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {c.name: [] for c in contenders}
    for i in range(repeat):
        for c in contenders:
            r = run_once(c)
            runs[c.name].append(r)
            print(
                f"  round {i + 1}/{repeat} {c.name:16s} {r.elapsed:7.2f} s "
                f"(CPU {r.cpu:6.2f} s) {r.rss_mb:7.1f} MB {r.records:,} records",
                file=sys.stderr,
            )
    delivered = {r.records for rs in runs.values() for r in rs}
    if len(delivered) != 1:
        raise SystemExit(f"contenders delivered different record counts: {delivered}")
    return runs


def report(title: str, runs: dict[str, list[Run]], baseline: str) -> str:
    """A Markdown table of the runs: medians, min-max, records/s, peak RSS, ratio."""
    med = {n: statistics.median(r.elapsed for r in rs) for n, rs in runs.items()}
    records = next(iter(runs.values()))[0].records
    lines = [
        f"{title} — {records:,} records delivered, {len(next(iter(runs.values())))} runs each",
        "",
        f"| contender | median | min-max | records/s | CPU | peak RSS | time / {baseline} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rs in runs.items():
        times = [r.elapsed for r in rs]
        lines.append(
            f"| {name} | {med[name]:.2f} s | {min(times):.2f}-{max(times):.2f} s "
            f"| {records / med[name]:,.0f} | {statistics.median(r.cpu for r in rs):.2f} s "
            f"| {max(r.rss_mb for r in rs):.0f} MB "
            f"| {med[name] / med[baseline]:.2f} |"
        )
    return "\n".join(lines)


def sql_task_contenders(
    script: str,
    workdir: Path,
    db_url: str,
    truncate: Callable[[], None],
    count: Callable[[str], int],
) -> list[Contender]:
    """The SQL_TASK benchmark's contenders, for any database (``bench/sql_task.py``,
    ``bench/mysql_task.py``): ``script --child baseline`` and ``--child baseline-dicts``
    (the hand-written loops, writing ``dst_baseline``) and ``pipeline-run run
    bench/jobs/sql_task.yaml`` (``dst_framework``). ``truncate`` empties both tables;
    ``count(table)`` counts a table's rows."""
    me = [sys.executable, script, "--child"]
    return [
        Contender("baseline", [*me, "baseline"], truncate, lambda: count("dst_baseline")),
        Contender(
            "baseline-dicts", [*me, "baseline-dicts"], truncate, lambda: count("dst_baseline")
        ),
        Contender(
            "framework",
            [str(BIN / "pipeline-run"), "run", str(BENCH / "jobs" / "sql_task.yaml")],
            truncate,
            lambda: count("dst_framework"),
            env={"PIPELINE_BENCH_DB_URL": db_url},
            cwd=workdir,
        ),
    ]
