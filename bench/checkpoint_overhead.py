"""Benchmark: what checkpoints cost, and how fast a job with big state comes back.

1. Throughput of a file → keyed running count/sum → file job (1,000,000 records, 100,000
   keys) with a checkpoint every second versus none, on the memory and LMDB backends,
   checkpoint metadata in SQLite (as ``pipeline-run run`` does).
2. Restart: a checkpoint holding 1,000,000 keys of state is restored and the time until
   the first record is processed is measured (in-process; interpreter start-up and
   imports are reported separately).
3. Incremental checkpoints: with 1,000,000 keys of state, a full checkpoint versus the
   next one after 1 % of the keys changed (size and time, from the checkpoint rows).

    python bench/checkpoint_overhead.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"


def running(record: dict[str, Any], state: Any) -> dict[str, Any]:
    count, total = state.value("count", 0), state.value("sum", 0)
    count.update(count.value() + 1)
    total.update(total.value() + record["amount"])
    return {"i": record["i"], "count": count.value(), "sum": total.value()}


def make_input(path: Path, n: int, keys: int, then_changed: int = 0) -> None:
    """``n`` records over ``keys`` keys; then ``then_changed`` more over random ones of them."""
    if path.exists():
        return
    import orjson

    rnd = random.Random(3)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for i in range(n + then_changed):
            key = f"k{i}" if keys >= n and i < n else f"k{rnd.randrange(keys)}"
            f.write(orjson.dumps({"i": i, "user": key, "amount": rnd.randrange(100)}) + b"\n")
    tmp.rename(path)


def job(inp: Path, out: Path, backend: str, **config: Any) -> Any:
    from pipeline_core import PipelineJob

    return (
        PipelineJob.builder()
        .name(f"bench-{backend}")
        .source("file", path=str(inp))
        .transform(lambda s: s.key_by(lambda r: r["user"]).map(running))
        .sink("file", path=str(out), fsync=False)
        .config(state_backend=backend, **config)
        .build()
    )


def throughput(inp: Path, backend: str, interval: str | None) -> dict[str, float]:
    from pipeline_core.checkpoint import CheckpointStorage
    from pipeline_core.runtime.runner import Checkpointing
    from pipeline_core.store import MetadataStore
    from pipeline_core.testing import run

    work = Path(tempfile.mkdtemp(dir=DATA))
    try:
        store = MetadataStore.open(f"sqlite:///{work / 'meta.db'}")
        config = {"checkpoint_interval": interval} if interval else {}
        j = job(inp, work / "out", backend, **config)
        store.registry.register_or_update(_storable(j))
        checkpointing = Checkpointing(
            repository=store.checkpoints, storage=CheckpointStorage(str(work / "chk"))
        )
        store.executions.create(j.name, "bench-exec")
        t0 = time.perf_counter()
        result = run(
            j, execution_id="bench-exec", checkpointing=checkpointing if interval else None
        )
        elapsed = time.perf_counter() - t0
        return {
            "elapsed": elapsed,
            "checkpoints": len(result.checkpoints),
            "records": result.records_read,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _storable(j: Any) -> Any:
    """The registry stores definitions by steps; give it one for the execution row."""
    import attrs

    from pipeline_core import StepSpec

    return attrs.evolve(j, transform=None, steps=(StepSpec("select", {"fields": ["i"]}),))


def restart(inp: Path, backend: str, n: int) -> dict[str, float]:
    from pipeline_core import Sink, load_plugins, prepare
    from pipeline_core.checkpoint import CheckpointStorage, InMemoryCheckpointRepository
    from pipeline_core.runtime.runner import Checkpointing, execute
    from pipeline_core.testing import run

    work = Path(tempfile.mkdtemp(dir=DATA))
    try:
        repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(work / "chk"))
        first = run(
            job(inp, work / "out1", backend, checkpoint_every_records=n),
            checkpointing=Checkpointing(repository=repo, storage=storage),
        )
        chk = next(r for r in reversed(repo.list(first.job_name)) if r.status == "COMPLETED")
        assert n <= chk.state_data["source_state"]["total_read"] < n + 1000, chk.state_data

        first_write: list[float] = []
        plugins = load_plugins()
        prepared = prepare(job(inp, work / "out2", backend), plugins)
        make_sink = prepared.make_sink

        def timed_sink() -> Sink[Any]:
            sink = make_sink()
            write = sink.write

            async def w(records: list[Any]) -> None:
                if not first_write:
                    first_write.append(time.perf_counter())
                await write(records)

            sink.write = w  # type: ignore[method-assign]
            return sink

        import attrs

        prepared = attrs.evolve(prepared, make_sink=timed_sink)
        t0 = time.perf_counter()
        asyncio.run(
            execute(
                prepared,
                plugins,
                checkpointing=Checkpointing(repository=repo, storage=storage, restore_from=chk),
            )
        )
        return {"to_first_record": first_write[0] - t0, "state_bytes": chk.storage_size_bytes or 0}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def incremental(inp: Path, backend: str, n: int) -> dict[str, float]:
    """Checkpoint 1 holds ``n`` keys (full); checkpoint 2, at the end of the input, comes
    after ``n // 100`` more records changed that many keys (a delta where the backend
    has them)."""
    from pipeline_core.checkpoint import CheckpointStorage, InMemoryCheckpointRepository
    from pipeline_core.runtime.runner import Checkpointing
    from pipeline_core.testing import run

    work = Path(tempfile.mkdtemp(dir=DATA))
    try:
        repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(work / "chk"))
        run(
            job(inp, work / "out", backend, checkpoint_every_records=n, source_batch_size=1000),
            checkpointing=Checkpointing(repository=repo, storage=storage),
        )
        rows = [r for r in reversed(repo.list(f"bench-{backend}")) if r.status == "COMPLETED"]
        full, changed = rows
        assert full.state_data["source_state"]["total_read"] == n, full.state_data

        def seconds(r: Any) -> float:
            return float((r.complete_time - r.create_time).total_seconds())

        return {
            "full_bytes": full.storage_size_bytes or 0,
            "full_s": seconds(full),
            "changed_bytes": changed.storage_size_bytes or 0,
            "changed_s": seconds(changed),
            "incremental": bool(changed.state_data["operator_state"].get("incremental")),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def child(kind: str, *args: str) -> None:
    if kind == "throughput":
        print(
            json.dumps(throughput(Path(args[0]), args[1], args[2] if args[2] != "none" else None))
        )
    elif kind == "incremental":
        print(json.dumps(incremental(Path(args[0]), args[1], int(args[2]))))
    else:
        print(json.dumps(restart(Path(args[0]), args[1], int(args[2]))))


def sub(*args: str) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - t0
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    DATA.mkdir(exist_ok=True)
    n = args.records
    inp = DATA / f"keyed-{n}.jsonl"
    make_input(inp, n, keys=100_000)
    print(f"1) throughput, {n:,} records, 100,000 keys, file -> keyed count/sum -> file")
    for backend in ("memory", "lmdb"):
        runs: dict[str, list[dict[str, float]]] = {"none": [], "1s": []}
        for _ in range(args.repeat):
            for interval in runs:
                runs[interval].append(sub("throughput", str(inp), backend, interval))
        med = {k: statistics.median(r["elapsed"] for r in v) for k, v in runs.items()}
        chks = statistics.median(r["checkpoints"] for r in runs["1s"])
        loss = 1 - med["none"] / med["1s"]
        print(
            f"   {backend:6s}: no checkpoints {n / med['none']:>9,.0f} rec/s | every 1 s "
            f"{n / med['1s']:>9,.0f} rec/s ({chks:.0f} checkpoints) | throughput loss {loss:6.1%}"
        )
    big = DATA / f"unique-{n + 1000}.jsonl"
    make_input(big, n + 1000, keys=n + 1000)
    print(f"2) restart with {n:,} keys of state: restore + first record processed")
    for backend in ("memory", "lmdb"):
        r = sub("restart", str(big), backend, str(n))
        print(
            f"   {backend:6s}: {r['to_first_record']:.2f} s from execute() to the first record "
            f"written ({r['state_bytes'] / 1e6:.0f} MB checkpoint)"
        )
    changes = DATA / f"unique-{n}-then-{n // 100}.jsonl"
    make_input(changes, n, keys=n, then_changed=n // 100)
    print(f"3) a checkpoint after {n // 100:,} of {n:,} keys changed, versus a full one")
    for backend in ("memory", "lmdb"):
        rs = [sub("incremental", str(changes), backend, str(n)) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "incremental"}
        kind = "a delta" if all(r["incremental"] for r in rs) else "full"
        print(
            f"   {backend:6s}: full {med['full_bytes'] / 1e6:.1f} MB in {med['full_s']:.2f} s | "
            f"1 % changed ({kind}): {med['changed_bytes'] / 1e6:.2f} MB in "
            f"{med['changed_s']:.3f} s = {med['changed_bytes'] / med['full_bytes']:.1%} of the "
            f"size, {med['changed_s'] / med['full_s']:.1%} of the time"
        )
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import pipeline_core.store, pipeline_core.runtime.runner"],
        check=True,
    )
    startup = time.perf_counter() - t0
    print(f"   (a new process adds {startup:.2f} s of interpreter start-up and imports)")


if __name__ == "__main__":
    main()
