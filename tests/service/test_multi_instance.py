"""Three ``pipeline-run serve`` processes on one real PostgreSQL or MariaDB database.

30 cron jobs fire every 3 seconds for 40 s: every tick must run exactly once across
the instances, or be skipped (recorded as such) because that job's previous run was still
active then — how many are skipped depends on how fast this machine starts workers, so
that count is not asserted; that each skip was justified is. Meanwhile a long job runs; its owner is SIGKILLed mid-run and another
instance must take it over after the lease and finish it with no record lost or doubled
(the file sink publishes part files atomically per checkpoint).
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest
import yaml
from sqlalchemy import create_engine, text

from pipeline_core.store import MetadataStore
from pipeline_core.store.migrate import upgrade
from tests.conftest import BIN, pipeline_run

pytestmark = pytest.mark.timeout(300)

CRON_JOBS = 30
CRON = "*/3 * * * * *"  # 6 fields: every 3 seconds
CRON_PHASE_S = 40
LONG_RECORDS = 3000


def write_jobs(root: Path) -> Path:
    jobs = root / "jobs"
    jobs.mkdir()
    data = root / "small.jsonl"
    data.write_bytes(b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(5)))
    for n in range(CRON_JOBS):
        (jobs / f"tick-{n:02d}.yaml").write_text(
            yaml.safe_dump(
                {
                    "name": f"tick-{n:02d}",
                    "source": {"type": "file", "config": {"path": str(data)}},
                    "sink": {"type": "file", "config": {"path": str(root / "out" / f"t{n}")}},
                    "schedule": {"type": "CRON", "cron": CRON},
                }
            )
        )
    big = root / "big.jsonl"
    big.write_bytes(b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(LONG_RECORDS)))
    (jobs / "long.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "long",
                "type": "STREAMING",
                "source": {"type": "file", "config": {"path": str(big)}},
                "transform": [{"type": "rate_limit", "per_second": 250}],
                "sink": {"type": "file", "config": {"path": str(root / "out" / "long")}},
                "config": {"checkpoint_interval": "500ms", "source_batch_size": 50},
            }
        )
    )
    return jobs


def serve(name: str, url: str, root: Path, jobs: Path) -> subprocess.Popen[bytes]:
    cwd = root / name
    cwd.mkdir()
    log = (root / f"{name}.log").open("wb")
    return subprocess.Popen(
        [
            str(BIN / "pipeline-run"),
            "--database",
            url,
            "serve",
            "--jobs",
            str(jobs),
            "--instance",
            name,
            "--lease",
            "3s",
            "--heartbeat",
            "500ms",
            "--checkpoint-url",
            str(root / "checkpoints"),
            "--no-api",
        ],
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )


def wait_for(predicate, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request: pytest.FixtureRequest) -> str:
    """A throwaway database on each server database the claims run on (SKIP LOCKED)."""
    return str(request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url"))


def test_three_instances_fire_each_tick_once_and_survive_a_sigkill(
    server_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pg_url = server_url  # the name the test was written with
    admin = create_engine(pg_url)
    upgrade(admin)
    admin.dispose()
    jobs = write_jobs(tmp_path)
    names = ["i1", "i2", "i3"]
    procs = {n: serve(n, pg_url, tmp_path, jobs) for n in names}
    store = MetadataStore.open(pg_url)
    request.addfinalizer(store.close)
    engine = store.engine
    try:
        wait_for(
            lambda: len(store.instances.live(dt.timedelta(seconds=3))) == 3,
            30,
            "three live instances",
        )
        started = time.monotonic()
        time.sleep(4)
        long_id = pipeline_run("--database", pg_url, "jobs", "start", "long").stdout.strip()
        wait_for(
            lambda: (
                store.executions.get(long_id).status.value == "RUNNING"
                and store.executions.get(long_id).processed_records >= 400
            ),
            30,
            "the long job to make progress",
        )
        victim = store.executions.get(long_id).owner_instance
        assert victim in procs
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        killed_at = time.monotonic()
        # the rest of the cron phase goes on in the two survivors
        time.sleep(max(0.0, CRON_PHASE_S - (time.monotonic() - started)))
        for n in range(CRON_JOBS):
            store.schedules.delete(f"tick-{n:02d}")
        wait_for(
            lambda: store.executions.get(long_id).status.value == "COMPLETED",
            90,
            "the long job to complete on a survivor",
        )
        wait_for(lambda: not store.executions.query(active=True, limit=5), 60, "all done")
        took_over_after = time.monotonic() - killed_at
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    check(store, engine, tmp_path, names, procs, victim, long_id, took_over_after)


def check(  # type: ignore[no-untyped-def]
    store, engine, tmp_path, names, procs, victim, long_id, took_over_after
) -> None:
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in names}
    survivors = [n for n in names if n != victim]
    for n in survivors:
        assert procs[n].returncode == 0, logs[n]

    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT job_name, scheduled_time, status, owner_instance, error_message, "
                "start_time, end_time FROM pipeline_job_execution WHERE triggered_by = 'CRON'"
            )
        ).all()
    per_tick = collections.Counter((r.job_name, r.scheduled_time) for r in rows)
    assert per_tick and max(per_tick.values()) == 1, [k for k, v in per_tick.items() if v > 1]
    ticks_per_job = collections.Counter(r.job_name for r in rows)
    # 40 s at one tick per 3 s is about 13 ticks per job; all 30 jobs fired
    assert len(ticks_per_job) == CRON_JOBS
    assert min(ticks_per_job.values()) >= 10, ticks_per_job
    statuses = collections.Counter(r.status for r in rows)
    assert set(statuses) <= {"COMPLETED", "CANCELLED"}, statuses
    ran = [r for r in rows if r.status == "COMPLETED"]
    skipped = [r for r in rows if r.status == "CANCELLED"]
    assert all("skipped" in (r.error_message or "") for r in skipped)
    assert min(collections.Counter(r.job_name for r in ran).values()) >= 3, statuses
    # a skip is justified: a run of that job that did run was active at that moment (a
    # second of slack: end times are taken before their transaction commits)
    slack = dt.timedelta(seconds=1)
    for s in skipped:
        assert any(
            r.job_name == s.job_name and r.start_time - slack <= s.end_time <= r.end_time + slack
            for r in ran
        ), (s.job_name, s.scheduled_time, s.error_message)
    # the work was shared by the instances (the victim may have been killed before it
    # completed any)
    owners = collections.Counter(r.owner_instance for r in rows if r.status == "COMPLETED")
    assert set(survivors) <= set(owners), owners

    long = store.executions.get(long_id)
    assert long.owner_instance in survivors and long.status.value == "COMPLETED"
    messages = [t.message or "" for t in store.executions.transitions(long_id)]
    assert any(f"owner {victim} stopped heart-beating" in m for m in messages)
    assert took_over_after < 60
    produced = sorted(
        orjson.loads(line)["i"]
        for f in (tmp_path / "out" / "long").glob("*.jsonl")
        for line in f.read_bytes().splitlines()
    )
    assert produced == list(range(LONG_RECORDS))  # nothing lost, nothing twice
