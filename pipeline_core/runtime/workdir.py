"""Per-attempt working directories (``.pipeline/work/state-…``), and sweeping the ones
that processes which died left behind.

Every attempt of an execution gets a private directory for its state backend, removed
when the attempt ends. A process that is SIGKILLed (OOM killer, ``kill -9``, power loss)
cannot remove it; so whenever a work directory is opened, the root is swept first.

Live or dead is told by a lock, not guessed from ages or process ids (which are reused):
the owner holds an exclusive ``flock`` on ``.workdir.lock`` inside its directory while it
lives, and the kernel releases it when the process dies. A sweeper takes the same lock
without waiting; if it gets it, nobody owns the directory and it goes. flock locks belong
to an open file, not to a process, so an attempt running in the sweeper's own process
(the service runs many) looks live too. The lock file sits beside what state backends
create (LMDB: ``state.lmdb/`` with its POSIX locks on ``lock.mdb`` — a different file, and
flock and POSIX locks do not interact), so it disturbs none of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["LOCK_NAME", "WorkDir", "open_workdir", "sweep"]

#: The lock file inside each work directory.
LOCK_NAME = ".workdir.lock"
_PREFIX = "state-"

#: Lock descriptors held by this process. A forked child (a process-pool worker) closes
#: its copies: a worker outliving a killed parent must not keep the parent's directory
#: "alive". Closing a copy does not unlock; the parent's descriptor still holds the lock.
_held: set[int] = set()


def _close_held_in_child() -> None:
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


def _is_current(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


class WorkDir:
    """An attempt's working directory (``path``), locked until :meth:`close` removes it."""

    __slots__ = ("_fd", "execution_id", "path", "run_id")

    def __init__(self, path: Path, fd: int, execution_id: str, run_id: str) -> None:
        self.path = path
        self.execution_id = execution_id
        self.run_id = run_id
        self._fd: int | None = fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        """Remove the directory, then release the lock. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            shutil.rmtree(self.path, ignore_errors=True)  # still locked: no sweeper races us
        finally:
            _held.discard(fd)
            os.close(fd)

    def __enter__(self) -> WorkDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WorkDir({str(self.path)!r}{', closed' if self.closed else ''})"


def open_workdir(root: Path, execution_id: str, run_id: str) -> WorkDir:
    """Sweep ``root``, then create and lock a new work directory in it for one attempt."""
    root.mkdir(parents=True, exist_ok=True)
    sweep(root)
    for _ in range(100):
        path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{execution_id[:8]}-", dir=root))
        lock = path / LOCK_NAME
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue  # a concurrent sweep took the directory before we locked it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _is_current(fd, lock):
                os.write(fd, f"pid {os.getpid()} execution {execution_id} run {run_id}\n".encode())
                _held.add(fd)
                return WorkDir(path, fd, execution_id, run_id)
        except BlockingIOError:
            pass  # a concurrent sweep holds it and is removing the directory
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise OSError(f"cannot create a work directory in {root}")


def sweep(root: Path) -> list[Path]:
    """Remove every work directory in ``root`` whose lock is free (its process died, or it
    predates the locks); return the removed ones. Live directories are not touched."""
    try:
        entries = sorted(root.iterdir())
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        if not entry.name.startswith(_PREFIX) or entry.is_symlink() or not entry.is_dir():
            continue
        lock = entry / LOCK_NAME
        try:
            # created when missing: a directory without a lock has no owner either (or one
            # that has not locked it yet — it then sees the lock taken and starts over)
            fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            continue  # removed meanwhile, or not ours to touch
        _held.add(fd)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live attempt
            if not _is_current(fd, lock):
                continue  # its owner closed it, or another sweep took it, meanwhile
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                removed.append(entry)
        finally:
            _held.discard(fd)
            os.close(fd)
    return removed
