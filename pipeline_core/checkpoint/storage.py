"""Where checkpoint files go: a local directory by default, any fsspec URL otherwise
(``s3://bucket/checkpoints``, ``memory://…`` in tests)."""

from __future__ import annotations

import os
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

    def upload(self, local: Path, location: str) -> int:
        """Copy every file under ``local`` to ``location``; return the bytes written."""
        size = 0
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            target = f"{location}/{path.relative_to(local).as_posix()}"
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(path), target)
            size += path.stat().st_size
        return size

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
