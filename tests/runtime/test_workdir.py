"""Per-attempt work directories: removed at close; a SIGKILLed owner's is removed by the
next sweep; a live owner's — in another process or in this one — never is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline_core import PipelineJob
from pipeline_core.runtime.workdir import LOCK_NAME, open_workdir, sweep
from pipeline_core.state.lmdb_backend import LmdbStateBackend
from pipeline_core.testing import ListSink, MemorySource, run

OWNER = """
import os, sys
from pathlib import Path
from pipeline_core.runtime.workdir import open_workdir

wd = open_workdir(Path(sys.argv[1]), "e" * 32, "r" * 32)
(wd.path / "state.bin").write_bytes(b"x" * 1000)
print(wd.path, flush=True)
if sys.argv[2:] == ["fork"]:  # a child that outlives us, like a process-pool worker
    pid = os.fork()
    if pid == 0:  # fork's at-fork hooks have run by now
        os.write(1, b"child\\n")  # one write: print may write the newline apart
        sys.stdin.readline()
        os._exit(0)
    os.write(1, b"%d\\n" % pid)
sys.stdin.readline()  # until told to close
wd.close()
print("closed", flush=True)
"""


class Owner:
    """A real process holding one work directory until told to close it."""

    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", OWNER, str(root), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdout, self.stdin = self.proc.stdout, self.proc.stdin
        self.path = Path(self.stdout.readline().strip())
        assert self.path.is_dir(), self.path

    def close(self) -> None:
        self.stdin.write("\n")
        self.stdin.flush()
        assert self.stdout.readline() == "closed\n"
        assert self.proc.wait(timeout=60) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def test_a_killed_owners_directory_is_swept_and_a_live_ones_is_not(tmp_path: Path) -> None:
    root = tmp_path / "work"
    dead, live = Owner(root), Owner(root)
    dead.kill()
    assert dead.path.is_dir()  # nobody removed it: that is the leak
    assert sweep(root) == [dead.path]
    assert not dead.path.exists()
    assert (live.path / "state.bin").read_bytes() == b"x" * 1000  # untouched
    assert sweep(root) == []
    live.close()
    assert list(root.iterdir()) == []


def test_opening_sweeps_and_spares_live_directories_of_this_process(tmp_path: Path) -> None:
    root = tmp_path / "work"
    dead = Owner(root)
    dead.kill()
    with open_workdir(root, "a" * 32, "a" * 32) as mine:
        assert not dead.path.exists()  # swept when a new one was opened
        assert mine.path.name.startswith("state-aaaaaaaa-")
        with open_workdir(root, "b" * 32, "c" * 32) as other:
            assert mine.path.is_dir()  # a live one in the same process is not swept
            assert sorted(root.iterdir()) == sorted([mine.path, other.path])
            assert "run cccccccc" in (other.path / LOCK_NAME).read_text()
        assert not other.path.exists()
    assert list(root.iterdir()) == []
    mine.close()  # idempotent


def test_a_forked_child_does_not_keep_a_killed_owner_alive(tmp_path: Path) -> None:
    root = tmp_path / "work"
    owner = Owner(root, "fork")
    # the parent's pid line and the child's "child" line come in either order; killing
    # the parent before the child has even returned from fork would test nothing
    lines = sorted(owner.stdout.readline().strip() for _ in range(2))
    assert lines[1] == "child", lines
    child = int(lines[0])
    try:
        owner.kill()
        assert sweep(root) == [owner.path]  # the child's copy of the lock was closed
    finally:
        os.kill(child, signal.SIGKILL)


def test_directories_from_before_the_locks_are_swept_other_entries_are_not(
    tmp_path: Path,
) -> None:
    root = tmp_path / "work"
    old = root / "state-0123abcd-x1y2z3"
    (old / "state.lmdb").mkdir(parents=True)
    (old / "state.lmdb" / "data.mdb").write_bytes(b"old")
    (root / "notes").mkdir()
    (root / "state-file").write_text("not a directory")
    assert sweep(root) == [old]
    assert sorted(p.name for p in root.iterdir()) == ["notes", "state-file"]


def test_the_lmdb_backend_works_in_a_locked_work_directory(tmp_path: Path) -> None:
    root = tmp_path / "work"
    with open_workdir(root, "l" * 32, "l" * 32) as wd:
        backend = LmdbStateBackend()
        backend.open(wd.path)
        backend.put("ns", "k", 1)
        backend.flush()
        assert sweep(root) == []  # the sweep's lock attempt leaves LMDB's locks alone
        snap = tmp_path / "snap"
        snap.mkdir()
        backend.snapshot(snap)
        backend.put("ns", "k", 2)
        backend.flush()
        backend.restore(snap)
        assert backend.get("ns", "k") == 1
        backend.close()
        assert (wd.path / LOCK_NAME).exists()
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("backend", ["memory", "lmdb"])
def test_an_execution_sweeps_dead_directories_and_removes_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / ".pipeline" / "work"
    dead = Owner(root)
    dead.kill()
    sink = ListSink()
    job: Any = (
        PipelineJob.builder()
        .name("workdirs")
        .source(MemorySource.of([1, 2, 3]))
        .sink(sink)
        .config(state_backend=backend)
        .build()
    )
    run(job)
    assert sink.committed == [1, 2, 3]
    assert list(root.iterdir()) == []
