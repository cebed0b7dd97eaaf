"""The ``lmdb`` state backend: state on disk (memory-mapped), larger than memory.

One LMDB environment per execution in its work directory, opened without fsync: the
live database needs no durability of its own, because checkpoints are what survives a
crash. Writes of a batch share one write transaction, committed by ``flush``. A snapshot
is ``env.copy(compact=True)`` — a consistent copy made under a read transaction.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import lmdb

from pipeline_core.state.backend import StateBackend, StateBackendConfig
from pipeline_core.state.serializers import serializer_named

__all__ = ["LmdbStateBackend", "LmdbStateConfig"]

_SEP = b"\x00"


@attrs.define(frozen=True, kw_only=True)
class LmdbStateConfig(StateBackendConfig):
    #: Largest size the database may grow to (virtual; the file is sparse).
    map_size: int = 1 << 36


class LmdbStateBackend(StateBackend[LmdbStateConfig]):
    type_name = "lmdb"
    config_cls = LmdbStateConfig

    def __init__(self, config: LmdbStateConfig | None = None) -> None:
        super().__init__(config or LmdbStateConfig())
        self.serializer = serializer_named(self.config.serializer)
        self._env: lmdb.Environment | None = None
        self._txn: lmdb.Transaction | None = None
        self._path: Path | None = None

    def open(self, workdir: Path) -> None:
        self._path = workdir / "state.lmdb"
        self._open_env()

    def _open_env(self) -> None:
        assert self._path is not None
        self._path.mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(
            str(self._path),
            map_size=self.config.map_size,
            sync=False,
            metasync=False,
            readahead=False,
            max_dbs=0,
        )

    def _write(self) -> lmdb.Transaction:
        txn = self._txn
        if txn is None:
            assert self._env is not None, "state backend used before open()"
            txn = self._txn = self._env.begin(write=True)
        return txn

    def _key(self, namespace: str, key: Any) -> bytes:
        return namespace.encode() + _SEP + self.serializer.dumps(key)

    def get(self, namespace: str, key: Any, default: Any = None) -> Any:
        data = self._write().get(self._key(namespace, key))
        return default if data is None else self.serializer.loads(bytes(data))

    def put(self, namespace: str, key: Any, value: Any) -> None:
        self._write().put(self._key(namespace, key), self.serializer.dumps(value))

    def delete(self, namespace: str, key: Any) -> None:
        self._write().delete(self._key(namespace, key))

    def items(self, namespace: str) -> Iterator[tuple[Any, Any]]:
        prefix = namespace.encode() + _SEP
        loads = self.serializer.loads
        out = []
        with self._write().cursor() as cur:
            if cur.set_range(prefix):
                for k, v in cur:
                    kb = bytes(k)
                    if not kb.startswith(prefix):
                        break
                    out.append((loads(kb[len(prefix) :]), loads(bytes(v))))
        return iter(out)

    def flush(self) -> None:
        if self._txn is not None:
            self._txn.commit()
            self._txn = None

    def snapshot(self, directory: Path) -> int:
        self.flush()
        assert self._env is not None
        target = directory / "state.lmdb"
        target.mkdir(parents=True, exist_ok=True)
        self._env.copy(str(target), compact=True)
        return sum(f.stat().st_size for f in target.iterdir())

    def restore(self, directory: Path) -> None:
        self.close()
        assert self._path is not None
        shutil.rmtree(self._path, ignore_errors=True)
        self._path.mkdir(parents=True)
        shutil.copyfile(directory / "state.lmdb" / "data.mdb", self._path / "data.mdb")
        self._open_env()

    def close(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        if self._env is not None:
            self._env.close()
            self._env = None
