"""Unfinished parts of dead attempts are swept; those of live attempts never are.

With real processes: ``pipeline-run`` is SIGKILLed before its first checkpoint (nothing
restores it, so only the sweep of a fresh run can clean up), and a live writer keeps its
parts while another run into the same directory completes. In-process: what a restore
publishes survives, committed files are never touched, a live sink in the same process
is spared.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from pipeline_connector_file import FileSink, FileSinkConfig
from pipeline_core import RuntimeContext

PIPELINE_RUN = str(Path(sys.executable).parent / "pipeline-run")

JOB = """\
name: {name}
source: {{type: file, config: {{path: in.jsonl}}}}
transform: [{{type: rate_limit, per_second: {rate}}}]
sink: {{type: file, config: {{path: '{out}', max_records_per_file: 50}}}}
config: {{checkpoint_interval: 1h, source_batch_size: 10}}
"""


def make_job(directory: Path, out: Path, records: range, rate: int, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "in.jsonl").write_bytes(b"".join(orjson.dumps({"i": i}) + b"\n" for i in records))
    (directory / "job.yaml").write_text(JOB.format(name=name, rate=rate, out=out))


def start(directory: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PIPELINE_RUN, "run", "--resume", "--no-progress", "--quiet", "job.yaml"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PIPELINE_DATABASE_URL": ""},
    )


def finish(proc: subprocess.Popen[bytes]) -> None:
    code = proc.wait(timeout=120)
    assert code == 0, proc.stderr.read().decode() if proc.stderr else ""


def unfinished(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob(".*.inprogress")) if out.exists() else []


def wait_for_parts(proc: subprocess.Popen[bytes], out: Path, n: int) -> list[str]:
    """Poll until the writer has ``n`` unfinished parts (two rolled, one open for n=3)."""
    while len(parts := unfinished(out)) < n:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.01)
    return parts


def hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def committed(out: Path) -> list[Any]:
    return [
        orjson.loads(line)["i"]
        for p in sorted(out.iterdir())
        if not p.name.startswith(".")
        for line in p.read_bytes().splitlines()
    ]


def test_a_run_killed_before_its_first_checkpoint_is_swept_by_the_next(tmp_path: Path) -> None:
    job, out = tmp_path / "job", tmp_path / "out"
    make_job(job, out, range(20_000), rate=500, name="killed-early")
    first = start(job)
    left = wait_for_parts(first, out, 3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert committed(out) == []  # no checkpoint: nothing published, nothing to restore
    assert set(left) <= set(unfinished(out))
    assert len([n for n in hidden(out) if n.endswith(".lock")]) == 1  # its attempt lock
    assert len(list((job / ".pipeline" / "work").iterdir())) == 1  # its work directory

    make_job(job, out, range(20_000), rate=1_000_000, name="killed-early")
    finish(start(job))  # --resume finds no checkpoint: a fresh run, no restore_commit

    assert hidden(out) == []  # no .inprogress file, no lock file
    assert committed(out) == list(range(20_000))  # exactly once, in order
    assert list((job / ".pipeline" / "work").iterdir()) == []  # the killed one's swept too


def test_the_parts_of_a_live_writer_are_not_swept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_job(tmp_path / "live", out, range(30_000), rate=300, name="live")
    make_job(tmp_path / "other", out, range(100_000, 101_000), rate=1_000_000, name="other")
    live = start(tmp_path / "live")
    try:
        parts = wait_for_parts(live, out, 3)
        finish(start(tmp_path / "other"))  # sweeps after its first checkpoint
        assert live.poll() is None, "the live writer ended: the test proves nothing"
        assert set(parts) <= set(unfinished(out))  # every part of the live writer is there
        assert committed(out) == list(range(100_000, 101_000))
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()

    # now it is dead: the next attempt into the directory (a restore) removes its parts
    finish(start(tmp_path / "other"))
    assert hidden(out) == []
    assert committed(out) == list(range(100_000, 101_000))


def ctx(run_id: str) -> RuntimeContext:
    return RuntimeContext(job_name="t", execution_id=run_id, component="sink (file)")


def test_restore_publishes_what_it_prepared_and_sweeps_only_dead_parts(tmp_path: Path) -> None:
    """A dead attempt "deadbeef" prepared part 0 for the restored checkpoint and left part 1
    unfinished; part 2 of an attempt from before the lock files has no lock. A live sink
    in this same process writes its own parts meanwhile."""
    (tmp_path / "part-00000000-00000.jsonl").write_bytes(b'{"i":-1}\n')  # committed earlier
    (tmp_path / ".part-deadbeef-00000.jsonl.inprogress").write_bytes(b'{"i":0}\n')
    (tmp_path / ".part-deadbeef-00001.jsonl.inprogress").write_bytes(b'{"i":1}\n')
    (tmp_path / ".part-deadbeef.lock").touch()  # nobody holds it
    (tmp_path / ".part-01d01d01-00002.jsonl.gz.inprogress").write_bytes(b"x")
    prepared = {"files": [str(tmp_path / "part-deadbeef-00000.jsonl")]}

    async def go() -> tuple[list[str], list[str]]:
        live = FileSink(FileSinkConfig(path=str(tmp_path)))
        await live.open(ctx("11111111aaaa"))
        await live.write([{"i": 100}])
        await live.prepare_commit(1)  # staged, not committed: unfinished on disk
        await live.write([{"i": 101}])  # open part
        resumed = FileSink(FileSinkConfig(path=str(tmp_path)))
        await resumed.open(ctx("22222222bbbb"))
        during = hidden(tmp_path)
        await resumed.restore_commit(3, prepared)
        after_restore = hidden(tmp_path)
        await resumed.write([{"i": 2}])
        await resumed.prepare_commit(4)
        await resumed.on_checkpoint_complete(4)
        await resumed.close()
        await live.on_checkpoint_complete(1)
        await live.close()
        return during, after_restore

    during, after_restore = asyncio.run(go())
    assert ".part-deadbeef-00000.jsonl.inprogress" in during  # open() did not sweep it
    assert after_restore == [
        ".part-11111111-00000.jsonl.inprogress",  # the live sink's staged part
        ".part-11111111-00001.jsonl.inprogress",  # and its open one
        ".part-11111111.lock",
        ".part-22222222.lock",
    ]
    assert hidden(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "part-00000000-00000.jsonl",
        "part-11111111-00000.jsonl",
        "part-22222222-00000.jsonl",
        "part-deadbeef-00000.jsonl",
    ]
    assert committed(tmp_path) == [-1, 100, 2, 0]


def test_a_fresh_attempt_sweeps_dead_parts_after_its_first_checkpoint(tmp_path: Path) -> None:
    (tmp_path / ".part-deadbeef-00000.jsonl.inprogress").write_bytes(b'{"i":0}\n')
    seen: dict[str, list[str]] = {}

    async def go() -> None:
        sink = FileSink(FileSinkConfig(path=str(tmp_path)))
        await sink.open(ctx("33333333cccc"))
        await sink.write([{"i": 1}])
        seen["before"] = hidden(tmp_path)
        await sink.prepare_commit(1)
        seen["prepared"] = hidden(tmp_path)  # the dead one's checkpoint may still matter
        await sink.on_checkpoint_complete(1)
        seen["committed"] = hidden(tmp_path)
        await sink.close()

    asyncio.run(go())
    assert ".part-deadbeef-00000.jsonl.inprogress" in seen["before"]
    assert ".part-deadbeef-00000.jsonl.inprogress" in seen["prepared"]
    assert seen["committed"] == [".part-33333333.lock"]
    assert hidden(tmp_path) == [] and committed(tmp_path) == [1]
