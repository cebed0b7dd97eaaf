"""Benchmark: JSON Lines file → parse → filter → map → JSON Lines file.

The framework (file source → Stream.filter → Stream.map → file sink) against a
hand-written loop doing the same work with the same JSON library (orjson), in the same
run. Each measurement runs in a fresh subprocess so that peak RSS is its own.

    python bench/file_to_file.py [--records 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"


def keep(r: dict[str, Any]) -> bool:
    return r["status"] == "paid"


def enrich(r: dict[str, Any]) -> dict[str, Any]:
    r["amount_cents"] = int(r["amount"] * 100)
    r["user"] = r["user"].upper()
    return r


def make_input(path: Path, n: int) -> None:
    if path.exists():
        return
    import orjson

    rnd = random.Random(42)
    statuses = ["paid", "paid", "paid", "pending", "refunded"]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for i in range(n):
            rec = {
                "id": i,
                "user": f"user-{rnd.randrange(100_000)}",
                "status": rnd.choice(statuses),
                "amount": round(rnd.uniform(1, 500), 2),
                "tags": ["a", "b"] if i % 3 else [],
            }
            f.write(orjson.dumps(rec) + b"\n")
    tmp.rename(path)


# --- the two contenders (run in child processes) ----------------------------------


def run_baseline(inp: str, out_dir: str, fsync: bool = False) -> int:
    import orjson

    loads, dumps = orjson.loads, orjson.dumps
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    with open(inp, "rb") as f, open(os.path.join(out_dir, "out.jsonl"), "wb") as o:
        for line in f:
            r = loads(line)
            if keep(r):
                o.write(dumps(enrich(r)) + b"\n")
                written += 1
        if fsync:
            o.flush()
            os.fsync(o.fileno())
    return written


def run_framework(inp: str, out_dir: str, fsync: bool = False) -> int:
    from pipeline_core import PipelineJob
    from pipeline_core.testing import run

    # Built and validated inside the timed region: plugin discovery and job preparation
    # are part of what a user waits for; interpreter imports are reported separately.
    job = (
        PipelineJob.builder()
        .name("bench-file-to-file")
        .source("file", path=inp, format="jsonl")
        .transform(lambda s: s.filter(keep).map(enrich))
        .sink("file", path=out_dir, fsync=fsync)
        .build()
    )
    return run(job).records_written


def child(which: str, inp: str, out_dir: str) -> None:
    import resource

    fn = run_baseline if which.startswith("baseline") else run_framework
    t_import = time.perf_counter()
    if fn is run_framework:
        import pipeline_core.testing  # noqa: F401
    t0 = time.perf_counter()
    written = fn(inp, out_dir, which.endswith("+fsync"))
    elapsed = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    imports = t0 - t_import
    print(
        json.dumps({"elapsed": elapsed, "written": written, "rss_mb": rss_mb, "imports": imports})
    )


def measure(which: str, inp: Path, records: int) -> dict[str, float]:
    out_dir = DATA / f"out-{which}"
    shutil.rmtree(out_dir, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", which, str(inp), str(out_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(out_dir, ignore_errors=True)
    result["rate"] = records / result["elapsed"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("WHICH", "INPUT", "OUT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    DATA.mkdir(exist_ok=True)
    inp = DATA / f"input-{args.records}.jsonl"
    make_input(inp, args.records)
    size_mb = inp.stat().st_size / 1e6
    print(f"input: {args.records:,} records, {size_mb:.0f} MB; python {platform.python_version()}")
    # "+fsync": the output is fsynced before it counts as written — the file sink's
    # default (fsync: true), so that a completed job survives a power loss.
    runs: dict[str, list[dict[str, float]]] = {
        "baseline": [],
        "framework": [],
        "baseline+fsync": [],
        "framework+fsync": [],
    }
    for _ in range(args.repeat):  # interleaved, so both see the same machine state
        for which in runs:
            runs[which].append(measure(which, inp, args.records))
    written = {r["written"] for rs in runs.values() for r in rs}
    assert len(written) == 1, f"contenders disagree on the output: {runs}"
    med = {w: statistics.median(r["elapsed"] for r in rs) for w, rs in runs.items()}
    rss = {w: max(r["rss_mb"] for r in rs) for w, rs in runs.items()}
    for w in runs:
        print(
            f"{w:16s} median {med[w]:6.2f} s  {args.records / med[w]:>10,.0f} records/s  "
            f"peak RSS {rss[w]:6.1f} MB  (runs: "
            + ", ".join(f"{r['elapsed']:.2f}" for r in runs[w])
            + ")"
        )
    imports = statistics.median(r["imports"] for r in runs["framework"])
    print(f"(framework imports, not timed above: {imports:.2f} s)")
    for suffix in ("", "+fsync"):
        ratio = med[f"framework{suffix}"] / med[f"baseline{suffix}"]
        print(f"framework{suffix} time / baseline{suffix} time = {ratio:.3f}")


if __name__ == "__main__":
    main()
