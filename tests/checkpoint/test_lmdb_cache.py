"""The LMDB backend's write-back cache: bounded, exact, and never seen by a restore."""

from __future__ import annotations

import random
from pathlib import Path

from pipeline_core.state.lmdb_backend import LmdbStateBackend, LmdbStateConfig


def lmdb(tmp_path: Path, name: str, cache_entries: int = 1 << 18) -> LmdbStateBackend:
    backend = LmdbStateBackend(LmdbStateConfig(cache_entries=cache_entries))
    backend.open(tmp_path / name)
    return backend


def snap(backend: LmdbStateBackend, directory: Path) -> int:
    directory.mkdir()
    return backend.snapshot(directory)


def test_a_small_cache_evicts_yet_reads_and_writes_stay_exact(tmp_path: Path) -> None:
    backend = lmdb(tmp_path, "live", cache_entries=50)
    expected: dict[int, int] = {}
    rnd = random.Random(1)
    for _ in range(5000):
        key = rnd.randrange(400)
        value = backend.get("op/n", key, 0) + 1
        if value % 7 == 0:
            backend.delete("op/n", key)
            expected.pop(key, None)
        else:
            backend.put("op/n", key, value)
            expected[key] = value
        assert backend._size <= 50
    assert {k: backend.get("op/n", k) for k in range(400) if k in expected} == expected
    assert all(backend.get("op/n", k, "none") == "none" for k in range(400) if k not in expected)
    assert dict(backend.items("op/n")) == expected  # dirty cached entries included


def test_evicted_writes_never_reach_a_restore_of_the_checkpoint(tmp_path: Path) -> None:
    """Eviction writes dirty entries into the live database between checkpoints; a
    restore (a crashed attempt's successor, or this backend) sees only the checkpoint."""
    backend = lmdb(tmp_path, "live", cache_entries=20)
    for k in range(100):
        backend.put("op/n", k, k)
    snap(backend, tmp_path / "chk1")
    for k in range(100):  # evicts again and again: the live database has most of these
        backend.put("op/n", k, -k)
    backend.put("op/n", "new", 1)
    backend.delete("op/n", 5)
    expected = {k: k for k in range(100)}

    successor = lmdb(tmp_path, "successor")
    successor.restore(tmp_path / "chk1")
    assert dict(successor.items("op/n")) == expected
    backend.restore(tmp_path / "chk1")
    assert dict(backend.items("op/n")) == expected
    assert backend.get("op/n", "new") is None and backend.get("op/n", 5) == 5


def test_unhashable_keys_bypass_the_cache(tmp_path: Path) -> None:
    backend = lmdb(tmp_path, "live")
    backend.put("ns", ["a", 1], {"v": 1})
    backend.put("ns", "plain", 2)
    assert backend.get("ns", ["a", 1]) == {"v": 1}
    snap(backend, tmp_path / "chk")
    backend.delete("ns", ["a", 1])
    assert backend.get("ns", ["a", 1], "gone") == "gone"
    fresh = lmdb(tmp_path, "fresh")
    fresh.restore(tmp_path / "chk")
    assert fresh.get("ns", ["a", 1]) == {"v": 1} and fresh.get("ns", "plain") == 2
