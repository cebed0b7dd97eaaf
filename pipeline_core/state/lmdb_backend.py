"""The ``lmdb`` state backend: state on disk (memory-mapped), larger than memory.

One LMDB environment per execution attempt in its work directory, opened without fsync:
the live database needs no durability of its own, because checkpoints are what survives a
crash — a restarted attempt gets a fresh work directory and restores from checkpoint
storage, never from a live database.

In front of it sits a bounded **write-back cache** of deserialised values: a read of a
cached entry is a dict lookup (no pickle, no LMDB lookup), a write only marks the entry
dirty. Dirty entries reach LMDB in one write transaction when the cache is full (then
the oldest quarter of the entries is dropped) and before a full snapshot. Because the
live database is never what a restore reads, writing evicted entries early makes nothing
durable that a restore would see. A full snapshot is ``env.copy(compact=True)`` — a
consistent copy made under a read transaction.

Incremental checkpoints: ``snapshot_delta`` writes to ``state.delta``, sorted, every
entry changed since the last checkpoint — the value, or a tombstone for a deleted key:
the dirty ones straight from the cache (writing them into LMDB first would cost random
page writes all over the database, more than the delta itself), and those eviction
wrote to LMDB since, whose LMDB keys it remembers. When more keys changed than
``cache_entries``, or more than half of the state, it declines and a full snapshot is
taken instead. ``restore_delta`` applies such a file in one write transaction.
"""

from __future__ import annotations

import itertools
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import lmdb

from pipeline_core.state.backend import StateBackend, StateBackendConfig
from pipeline_core.state.serializers import serializer_named

__all__ = ["LmdbStateBackend", "LmdbStateConfig"]

_SEP = b"\x00"

#: cached: the key has no value (never set, or deleted — a deletion is dirty too)
_ABSENT: Any = object()
#: dict.get default: not in the cache
_MISS: Any = object()

_DELTA_FILE = "state.delta"
_DELTA_MAGIC = b"PFLMDBD1"
#: each entry of a delta: value length (-1: deleted), key length; then key, value
_ENTRY = struct.Struct("<iI")


def _at_least_one(_: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.define(frozen=True, kw_only=True)
class LmdbStateConfig(StateBackendConfig):
    #: Largest size the database may grow to (virtual; the file is sparse).
    map_size: int = 1 << 36
    #: Entries (one per key and state name) the write-back cache holds. 262,144 entries
    #: of small values take about 30 MB, and the keys changed since the last checkpoint
    #: (remembered for the next delta, at most this many) up to 25 MB more. A keyed job
    #: whose hot keys fit in it runs at nearly the memory backend's speed.
    cache_entries: int = attrs.field(default=1 << 18, validator=_at_least_one)


class _Namespace:
    """The cached entries of one namespace, which of them LMDB does not have yet, and
    their LMDB keys (serialised once: a flush would otherwise pay for it every time)."""

    __slots__ = ("cache", "dirty", "encoded", "prefix", "unwritten")

    def __init__(self, name: str) -> None:
        self.prefix = name.encode() + _SEP
        self.cache: dict[Any, Any] = {}
        #: changed since the last checkpoint, not in LMDB yet
        self.dirty: set[Any] = set()
        #: not in LMDB yet either, but already in a checkpoint (a delta wrote it)
        self.unwritten: set[Any] = set()
        self.encoded: dict[Any, bytes] = {}


class LmdbStateBackend(StateBackend[LmdbStateConfig]):
    type_name = "lmdb"
    config_cls = LmdbStateConfig
    incremental = True

    def __init__(self, config: LmdbStateConfig | None = None) -> None:
        super().__init__(config or LmdbStateConfig())
        self.serializer = serializer_named(self.config.serializer)
        self._env: lmdb.Environment | None = None
        self._txn: lmdb.Transaction | None = None
        self._path: Path | None = None
        self._ns: dict[str, _Namespace] = {}
        self._size = 0  # cached entries, all namespaces
        #: LMDB keys written since the last snapshot, delta or restore (None: too many
        #: to remember — the next checkpoint is full)
        self._changed: set[bytes] | None = set()

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

    def _namespace(self, namespace: str) -> _Namespace:
        ns = self._ns.get(namespace)
        if ns is None:
            ns = self._ns[namespace] = _Namespace(namespace)
        return ns

    # --- the per-record path: the cache first ----------------------------------------

    def get(self, namespace: str, key: Any, default: Any = None) -> Any:
        ns = self._ns.get(namespace) or self._namespace(namespace)
        try:
            value = ns.cache.get(key, _MISS)
        except TypeError:  # an unhashable key (a list): never cached
            return self._get_uncached(ns, key, default)
        if value is _MISS:
            kb = ns.prefix + self.serializer.dumps(key)
            data = self._write().get(kb)
            value = _ABSENT if data is None else self.serializer.loads(bytes(data))
            ns.cache[key] = value
            ns.encoded[key] = kb
            self._size += 1
            if self._size > self.config.cache_entries:
                self._evict()
        return default if value is _ABSENT else value

    def put(self, namespace: str, key: Any, value: Any) -> None:
        ns = self._ns.get(namespace) or self._namespace(namespace)
        cache = ns.cache
        before = len(cache)
        try:
            cache[key] = value
        except TypeError:  # an unhashable key (a list): never cached
            self._put_uncached(ns, key, value)
            return
        ns.dirty.add(key)
        if len(cache) != before:
            self._size += 1
            if self._size > self.config.cache_entries:
                self._evict()

    def delete(self, namespace: str, key: Any) -> None:
        self.put(namespace, key, _ABSENT)

    def items(self, namespace: str) -> Iterator[tuple[Any, Any]]:
        self._write_dirty()
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

    def _get_uncached(self, ns: _Namespace, key: Any, default: Any) -> Any:
        data = self._write().get(ns.prefix + self.serializer.dumps(key))
        return default if data is None else self.serializer.loads(bytes(data))

    def _put_uncached(self, ns: _Namespace, key: Any, value: Any) -> None:
        kb = ns.prefix + self.serializer.dumps(key)
        if value is _ABSENT:
            self._write().delete(kb)
        else:
            self._write().put(kb, self.serializer.dumps(value))
        if self._changed is not None:
            self._changed.add(kb)

    # --- write-back ------------------------------------------------------------------

    def _write_dirty(self) -> None:
        """Put every entry LMDB lacks into the write transaction; they are clean after.
        The LMDB keys of those changed since the last checkpoint are remembered for the
        next delta (the others are in a checkpoint already)."""
        if not any(ns.dirty or ns.unwritten for ns in self._ns.values()):
            return
        txn = self._write()
        dumps = self.serializer.dumps
        changed = self._changed
        for ns in self._ns.values():
            if not ns.dirty and not ns.unwritten:
                continue
            cache, encoded, dirty = ns.cache, ns.encoded, ns.dirty
            puts = []
            for key in (dirty | ns.unwritten) if ns.unwritten else dirty:
                value = cache[key]
                kb = encoded.get(key)
                if kb is None:
                    kb = encoded[key] = ns.prefix + dumps(key)
                if value is _ABSENT:
                    txn.delete(kb)
                else:
                    puts.append((kb, dumps(value)))
                if changed is not None and key in dirty:
                    changed.add(kb)
            if puts:
                with txn.cursor() as cur:
                    cur.putmulti(puts)
            ns.dirty, ns.unwritten = set(), set()
        if changed is not None and len(changed) > self.config.cache_entries:
            self._changed = None

    def _write_back(self) -> None:
        """Write every entry LMDB lacks, in one transaction, and commit it."""
        self._write_dirty()
        self.flush()

    def _evict(self) -> None:
        """The cache is full: write what LMDB lacks in one transaction, then drop the
        oldest quarter (insertion order) of every namespace's entries."""
        self._write_back()
        limit = self.config.cache_entries
        drop = self._size - limit * 3 // 4
        if drop <= 0:
            return
        share = drop / self._size
        for ns in self._ns.values():
            cache = ns.cache
            doomed = list(itertools.islice(cache, round(len(cache) * share + 0.5)))
            encoded = ns.encoded
            for key in doomed:
                del cache[key]
                encoded.pop(key, None)
        self._size = sum(len(ns.cache) for ns in self._ns.values())

    def flush(self) -> None:
        """Commit the open write transaction (LMDB write transactions belong to the
        thread that began them: the coordinator calls this in the event loop's thread
        before a snapshot runs in a worker). Dirty cached entries stay in memory: a
        delta takes them from there, a full snapshot writes them first."""
        if self._txn is not None:
            self._txn.commit()
            self._txn = None

    # --- checkpoints -----------------------------------------------------------------

    def snapshot(self, directory: Path) -> int:
        self._write_back()
        assert self._env is not None
        target = directory / "state.lmdb"
        target.mkdir(parents=True, exist_ok=True)
        self._env.copy(str(target), compact=True)
        self._changed = set()
        return sum(f.stat().st_size for f in target.iterdir())

    def snapshot_delta(self, directory: Path) -> int | None:
        """The entries changed since the last checkpoint: those still dirty in the cache
        (taken from memory: they are not written to LMDB for this — the random page
        writes of that would cost more than the delta), and those eviction wrote to
        LMDB since (read back from it)."""
        self.flush()
        assert self._env is not None
        changed = self._changed
        if changed is None:
            return None
        dirty = sum(len(ns.dirty) for ns in self._ns.values())
        state = max(self._env.stat()["entries"], self._size)
        if (len(changed) + dirty) * 2 > state:
            return None
        dumps = self.serializer.dumps
        entries: dict[bytes, bytes | None] = {}
        for ns in self._ns.values():
            cache, encoded = ns.cache, ns.encoded
            for key in ns.dirty:
                kb = encoded.get(key)
                if kb is None:
                    kb = encoded[key] = ns.prefix + dumps(key)
                value = cache[key]
                entries[kb] = None if value is _ABSENT else dumps(value)
        path = directory / _DELTA_FILE
        pack = _ENTRY.pack
        with self._env.begin() as txn:
            for kb in changed:
                if kb not in entries:  # a dirty cached value is newer
                    entries[kb] = txn.get(kb)
        with open(path, "wb") as f:
            f.write(_DELTA_MAGIC)
            for kb in sorted(entries):
                value = entries[kb]
                if value is None:
                    f.write(pack(-1, len(kb)) + kb)
                else:
                    f.write(pack(len(value), len(kb)) + kb + value)
        for ns in self._ns.values():  # checkpointed now, still to be written to LMDB
            if ns.dirty:
                ns.unwritten |= ns.dirty
                ns.dirty = set()
        self._changed = set()
        return path.stat().st_size

    def restore(self, directory: Path) -> None:
        self.close()
        assert self._path is not None
        shutil.rmtree(self._path, ignore_errors=True)
        self._path.mkdir(parents=True)
        shutil.copyfile(directory / "state.lmdb" / "data.mdb", self._path / "data.mdb")
        self._open_env()
        self._changed = set()

    def restore_delta(self, directory: Path) -> None:
        self._write_back()
        data = memoryview((directory / _DELTA_FILE).read_bytes())
        if data[: len(_DELTA_MAGIC)] != _DELTA_MAGIC:
            raise ValueError(f"{directory / _DELTA_FILE} is not an LMDB state delta")
        txn = self._write()
        unpack, head = _ENTRY.unpack_from, _ENTRY.size
        at, end = len(_DELTA_MAGIC), len(data)
        while at < end:
            if at + head > end:
                break
            vlen, klen = unpack(data, at)
            at += head
            kb = data[at : at + klen]
            at += klen
            if vlen < 0:
                txn.delete(kb)
            else:
                txn.put(kb, data[at : at + vlen])
                at += vlen
        if at != end:
            raise ValueError(f"{directory / _DELTA_FILE} is truncated")
        self.flush()
        self._ns, self._size = {}, 0  # what the cache held may have changed
        self._changed = set()

    def close(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        self._ns = {}
        self._size = 0
        if self._env is not None:
            self._env.close()
            self._env = None
