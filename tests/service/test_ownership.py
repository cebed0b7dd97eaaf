"""One live owner per execution, with real processes and SIGKILL (docs/operations.md,
"Ownership" and "Control plane and worker processes").

The promises tested here, as the docs state them:

- `run --resume` continues the killed execution; a new run supersedes the job's dead
  executions in the transaction that starts it; a superseded execution is never run
  again, so a `serve` started later on the same database re-runs nothing.
- No sequence of kills, resumes and `serve` starts and stops publishes a record twice
  through an exactly-once sink (the file sink).
- A `serve` instance never runs user code: a step that blocks does not stop it from
  answering; a killed worker is retried from its checkpoint.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text

from conftest import migrate_to_head
from pipeline_core.store import MetadataStore
from pipeline_core.store.engine import make_engine
from pipeline_core.testing.crash import kill_and_resume
from tests.api.conftest import free_port, wait_serving
from tests.conftest import BIN, pipeline_run

pytestmark = pytest.mark.timeout(400)

RECORDS = 12_000

JOB = """\
name: owned
source: {{type: file, config: {{path: in.jsonl}}}}
transform:
  - {{type: rate_limit, per_second: {rate}}}
sink: {{type: file, config: {{path: out, max_records_per_file: 1000}}}}
config:
  checkpoint_interval: 150ms
  source_batch_size: 100
"""

ACTIVE = ("SCHEDULED", "INITIALIZING", "RUNNING", "CHECKPOINTING")


def make_job(directory: Path, rate: int = 4_000) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "in.jsonl", "wb") as f:
        for i in range(RECORDS):
            f.write(orjson.dumps({"i": i}) + b"\n")
    (directory / "job.yaml").write_text(JOB.format(rate=rate))


def published(directory: Path) -> list[int]:
    out = directory / "out"
    if not out.exists():
        return []
    return sorted(
        orjson.loads(line)["i"] for f in out.glob("*.jsonl") for line in f.read_bytes().splitlines()
    )


def env_for(url: str) -> dict[str, str]:
    return {**os.environ, "PIPELINE_DATABASE_URL": url, "COLUMNS": "200"}


def run_cmd(*extra: str) -> list[str]:
    return [str(BIN / "pipeline-run"), "run", "--no-progress", "--quiet", *extra, "job.yaml"]


def start_serve(directory: Path, url: str, *extra: str) -> subprocess.Popen[bytes]:
    log = (directory / "serve.log").open("ab")
    return subprocess.Popen(
        [
            str(BIN / "pipeline-run"),
            "-v",
            "serve",
            "--jobs",
            str(directory),
            "--lease",
            "2s",
            "--heartbeat",
            "300ms",
            *extra,
        ],
        cwd=directory,
        env=env_for(url),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=60)


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql)).all()]
    finally:
        engine.dispose()


def meta_url(db_url: str, directory: Path) -> str:
    if db_url.startswith("sqlite"):
        return f"sqlite:///{directory / 'meta.db'}"
    return db_url


def test_kill_resume_then_serve_publishes_every_record_once(db_url: str, tmp_path: Path) -> None:
    """The issue's sequence: three SIGKILLs, `--resume` to completion, then `serve` on the
    same database for longer than its lease: nothing is re-run."""
    url = meta_url(db_url, tmp_path)
    migrate_to_head(url)
    make_job(tmp_path)
    report = kill_and_resume(
        run_cmd("--resume"), cwd=tmp_path, kills=3, seed=db_url[:6], env=env_for(url)
    )
    assert report.kills == 3
    assert published(tmp_path) == list(range(RECORDS))
    serve = start_serve(tmp_path, url, "--no-api")
    try:
        time.sleep(6)  # three leases
    finally:
        assert stop(serve) == 0, (tmp_path / "serve.log").read_text()
    assert published(tmp_path) == list(range(RECORDS)), "serve re-ran a finished job"
    assert rows(url, "SELECT status FROM pipeline_job_execution") == [("COMPLETED",)]
    attempts = rows(
        url,
        "SELECT status, end_reason, owner_instance FROM pipeline_job_execution_attempt "
        "ORDER BY attempt",
    )
    assert attempts[-1][0] == "COMPLETED"
    assert all(a[0] == "LOST" and "process is gone" in str(a[1]) for a in attempts[:-1])
    assert "serve" not in " ".join(str(a[2]) for a in attempts)  # serve ran no attempt


def test_a_new_run_supersedes_a_dead_execution_and_serve_never_runs_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    migrate_to_head(url)
    make_job(tmp_path)
    proc = subprocess.Popen(run_cmd(), cwd=tmp_path, env=env_for(url))
    deadline = time.monotonic() + 30
    while len(published(tmp_path)) < 2_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    (dead,) = rows(url, "SELECT execution_id, status FROM pipeline_job_execution")
    assert dead[1] in ACTIVE  # killed: its row still says it runs
    fresh = subprocess.run(
        run_cmd(), cwd=tmp_path, env=env_for(url), capture_output=True, text=True, timeout=120
    )
    assert fresh.returncode == 0, fresh.stderr
    after_fresh = published(tmp_path)
    by_id = dict(rows(url, "SELECT execution_id, status FROM pipeline_job_execution"))
    (new_id,) = [k for k in by_id if k != dead[0]]
    assert by_id == {dead[0]: "CANCELLED", new_id: "COMPLETED"}
    assert rows(
        url, f"SELECT superseded_by FROM pipeline_job_execution WHERE execution_id = '{dead[0]}'"
    ) == [(new_id,)]
    serve = start_serve(tmp_path, url, "--no-api")
    try:
        time.sleep(5)
    finally:
        assert stop(serve) == 0
    assert published(tmp_path) == after_fresh  # nothing more was published
    assert dict(rows(url, "SELECT execution_id, status FROM pipeline_job_execution")) == by_id


def test_run_refuses_while_a_live_owner_runs_the_job(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    migrate_to_head(url)
    make_job(tmp_path, rate=2_000)
    first = subprocess.Popen(run_cmd(), cwd=tmp_path, env=env_for(url))
    try:
        deadline = time.monotonic() + 30
        while not published(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(
            run_cmd("--resume"), cwd=tmp_path, env=env_for(url), capture_output=True, text=True
        )
        assert second.returncode == 1
        assert re.search(r"job 'owned' is running as execution \w+ on \S+:\d+", second.stderr)
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 128 + signal.SIGTERM
    resumed = subprocess.run(run_cmd("--resume"), cwd=tmp_path, env=env_for(url), timeout=120)
    assert resumed.returncode == 0
    assert published(tmp_path) == list(range(RECORDS))


def test_random_kills_of_run_and_serve_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """Seeded interleaving of SIGKILLs of `run --resume` and of `serve` instances sharing
    one PostgreSQL database; every record is published exactly once."""
    seed = int(os.environ.get("PIPELINE_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (PIPELINE_TEST_SEED={seed} replays it)")
    rnd = random.Random(seed)
    migrate_to_head(pg_url)
    make_job(tmp_path, rate=3_000)
    checkpoints = str(tmp_path / "checkpoints")
    cp = ("--checkpoint-url", checkpoints)
    store = MetadataStore.open(pg_url)
    try:
        for step in range(6):
            who = rnd.choice(["run", "serve", "serve"])
            if who == "run":
                proc = subprocess.Popen(
                    run_cmd("--resume", *cp),
                    cwd=tmp_path,
                    env=env_for(pg_url),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            else:
                proc = start_serve(tmp_path, pg_url, "--no-api", *cp)
                if step == 0:  # somebody must start the job first
                    pipeline_run(  # serve may not have registered yet: --queue
                        "--database", pg_url, "jobs", "start", "--queue", "owned", cwd=tmp_path
                    )
            time.sleep(rnd.uniform(1.0, 3.5))
            proc.kill()
            proc.wait()
            if len(published(tmp_path)) >= RECORDS:
                break

        def finish() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                run_cmd("--resume", "--lease", "2s", *cp),
                cwd=tmp_path,
                env=env_for(pg_url),
                capture_output=True,
                text=True,
                timeout=200,
            )

        final = finish()
        if final.returncode != 0 and "is running as execution" in final.stderr:
            time.sleep(3)  # a killed serve's lease must run out first
            final = finish()
        assert final.returncode == 0, final.stderr
        got = published(tmp_path)
        assert len(got) == len(set(got)), f"duplicates (seed {seed})"
        assert got == list(range(RECORDS)), f"lost records (seed {seed})"
        # afterwards a serve finds nothing to run
        serve = start_serve(tmp_path, pg_url, "--no-api", *cp)
        time.sleep(4)
        assert stop(serve) == 0
        assert published(tmp_path) == list(range(RECORDS)), f"serve re-ran work (seed {seed})"
        active = [r for r in store.executions.query(job="owned") if r.status.value in ACTIVE]
        assert active == []
    finally:
        store.close()


SLEEPY = """\
import time

def nap(record):
    time.sleep(20)
    return record

def spin(record):
    total = 0
    for i in range(3_000_000):
        total += i
    return {**record, "total": total}
"""


def test_serve_answers_while_steps_block_and_a_killed_worker_is_retried(
    pg_url: str, tmp_path: Path
) -> None:
    """Two instances on one PostgreSQL; the first runs a step that sleeps 20 s (10 leases)
    and a CPU-bound one: it keeps answering and heart-beating — the second instance takes
    nothing over — and a SIGKILLed worker is retried from its checkpoint."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "fns.py").write_text(SLEEPY)
    (tmp_path / "one.jsonl").write_bytes(b'{"i": 0}\n')
    with open(tmp_path / "many.jsonl", "wb") as f:
        for i in range(200):
            f.write(orjson.dumps({"i": i}) + b"\n")
    (jobs / "sleepy.yaml").write_text(
        f"name: sleepy\nsource: {{type: file, config: {{path: {tmp_path / 'one.jsonl'}}}}}\n"
        'transform: [{type: map, function: "fns:nap"}]\n'
        f"sink: {{type: file, config: {{path: {tmp_path / 'out-sleepy'}}}}}\n"
    )
    (jobs / "spin.yaml").write_text(
        f"name: spin\nsource: {{type: file, config: {{path: {tmp_path / 'many.jsonl'}}}}}\n"
        'transform: [{type: map, function: "fns:spin"}]\n'
        f"sink: {{type: file, config: {{path: {tmp_path / 'out-spin'}}}}}\n"
        "config: {checkpoint_interval: 200ms, max_retry_times: 2, retry_interval: 100ms,"
        " source_batch_size: 5}\n"
    )
    url = pg_url
    migrate_to_head(url)
    port = free_port()
    serve = start_serve(jobs, url, "--port", str(port), "--instance", "first")
    base = f"http://127.0.0.1:{port}"
    second = None
    try:
        wait_serving(base, serve, jobs / "serve.log")
        for name in ("sleepy", "spin"):
            assert pipeline_run("--database", url, "jobs", "start", name).returncode == 0
        deadline = time.monotonic() + 30
        while (
            len(
                rows(
                    url,
                    "SELECT 1 FROM pipeline_job_execution WHERE owner_instance = 'first'"
                    " AND status = 'RUNNING'",
                )
            )
            < 2
        ):
            assert time.monotonic() < deadline, (jobs / "serve.log").read_text()
            time.sleep(0.1)
        second_dir = tmp_path / "second"
        second_dir.mkdir()
        (second_dir / "fns.py").write_text(SLEEPY)
        second = start_serve(second_dir, url, "--no-api", "--instance", "second")
        # the serve process never waits on a step: every /healthz is answered while the
        # sleepy step sleeps for 20 s (in the serve process it would block them all)
        started = time.monotonic()
        answered = 0
        pid = None
        while time.monotonic() - started < 6:
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            answered += 1
            if pid is None:
                spin = rows(
                    url, "SELECT execution_id FROM pipeline_job_execution WHERE job_name = 'spin'"
                )
                log = (jobs / "serve.log").read_text()
                found = spin and re.search(
                    rf"execution {spin[0][0]} attempt 1 runs in worker process (\d+)", log
                )
                pid = int(found.group(1)) if found else None
            time.sleep(0.2)
        # each was answered within its 5 s timeout; the count only shows it kept answering
        # over the 6 s (19 fit on a loaded machine, ~28 on a quiet one)
        assert answered >= 10
        assert pid is not None and pid != serve.pid, (jobs / "serve.log").read_text()
        os.kill(pid, signal.SIGKILL)  # the spin job's worker dies mid-execution
        deadline = time.monotonic() + 120
        while True:
            status = dict(rows(url, "SELECT job_name, status FROM pipeline_job_execution"))
            if status.get("spin") == "COMPLETED":
                break
            assert time.monotonic() < deadline, status
            assert serve.poll() is None, "the instance died with its worker"
            time.sleep(0.3)
        got = sorted(
            orjson.loads(line)["i"]
            for f in (tmp_path / "out-spin").glob("*.jsonl")
            for line in f.read_bytes().splitlines()
        )
        assert got == list(range(200))  # resumed from its checkpoint: nothing twice
        attempts = rows(
            url,
            "SELECT a.status, a.end_reason FROM pipeline_job_execution_attempt a "
            "JOIN pipeline_job_execution e ON e.execution_id = a.execution_id "
            "WHERE e.job_name = 'spin' ORDER BY a.attempt",
        )
        assert attempts[0][0] == "FAILED" and "SIGKILL" in str(attempts[0][1])
        assert attempts[-1][0] == "COMPLETED"
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        # the sleeping execution stayed with its owner all along: one attempt, never lost
        sleepy = rows(
            url,
            "SELECT a.status, a.owner_instance FROM pipeline_job_execution_attempt a "
            "JOIN pipeline_job_execution e ON e.execution_id = a.execution_id "
            "WHERE e.job_name = 'sleepy'",
        )
        assert sleepy in ([("RUNNING", "first")], [("COMPLETED", "first")]), sleepy
    finally:
        if second is not None:
            assert stop(second) == 0
        assert stop(serve) == 0
