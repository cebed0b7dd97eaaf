"""Where checkpoint files go: a local directory by default, any fsspec URL otherwise
(``s3://bucket/checkpoints``, ``memory://…`` in tests)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import fsspec

__all__ = ["CheckpointStorage", "default_storage_url"]


def default_storage_url() -> str:
    return os.environ.get("PIPELINE_CHECKPOINT_URL") or str(
        Path.cwd() / ".pipeline" / "checkpoints"
    )


class CheckpointStorage:
    """Uploads a local snapshot directory, downloads it back, deletes it."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_storage_url()
        self.fs, self.root = fsspec.core.url_to_fs(self.url)

    def location(self, job: str, execution_id: str, checkpoint_id: int) -> str:
        return f"{self.root.rstrip('/')}/{job}/{execution_id}/chk-{checkpoint_id:06d}"

    @property
    def is_local(self) -> bool:
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, tuple) else (protocol,))

    def staging_dir(self) -> Path:
        """A fresh local directory to build a snapshot in. For local storage it is on the
        same file system as the checkpoints, so that upload is a rename, not a copy."""
        if self.is_local:
            root = Path(self.root) / ".staging"
            root.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(dir=root))
        return Path(tempfile.mkdtemp(prefix="pipeline-chk-"))

    def upload(self, local: Path, location: str) -> int:
        """Move or copy every file under ``local`` to ``location``; return the bytes."""
        if self.is_local:
            size = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
            final = Path(location)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # a failed earlier attempt of the same id
                shutil.rmtree(final)
            os.rename(local, final)
            return size
        size = 0
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            target = f"{location}/{path.relative_to(local).as_posix()}"
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(path), target)
            size += path.stat().st_size
        return size

    def local_path(self, location: str) -> Path | None:
        """The checkpoint's directory when storage is local (read in place), else None."""
        return Path(location) if self.is_local else None

    def download(self, location: str, local: Path) -> None:
        for remote in self.fs.find(location):
            rel = (
                remote[len(location.rstrip("/")) + 1 :]
                if remote.startswith(location)
                else remote.rsplit("/", 1)[-1]
            )
            target = local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote, str(target))

    def delete(self, location: str) -> None:
        if self.fs.exists(location):
            self.fs.rm(location, recursive=True)
