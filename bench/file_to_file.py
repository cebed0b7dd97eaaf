"""Benchmark: JSON Lines file → parse → filter → map → JSON Lines file, whole processes.

The framework, ``pipeline-run run bench/jobs/file_to_file.yaml`` at its defaults (file
source → filter → map → file sink, recorded in SQLite), against a hand-written orjson
loop calling the same step functions (``bench/jobs/file_fns.py``),
``python bench/file_to_file.py --child baseline+fsync`` — with an fsync at the end, as
the file sink does by default — and without it, in the same run.

    python bench/file_to_file.py [--records 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness import Contender

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "jobs"))


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


def run_baseline(inp: str, out_dir: str, fsync: bool) -> None:
    import orjson
    from file_fns import enrich, keep

    loads, dumps = orjson.loads, orjson.dumps
    os.makedirs(out_dir, exist_ok=True)
    with open(inp, "rb") as f, open(os.path.join(out_dir, "out.jsonl"), "wb") as o:
        for line in f:
            r = loads(line)
            if keep(r):
                o.write(dumps(enrich(r)) + b"\n")
        if fsync:
            o.flush()
            os.fsync(o.fileno())


def contenders(inp: Path, work: Path) -> list[Contender]:
    from harness import BIN, Contender

    def fresh(out: Path) -> Callable[[], None]:
        return lambda: shutil.rmtree(out, ignore_errors=True)

    def lines(out: Path) -> Callable[[], int]:
        def count() -> int:
            n = sum(p.read_bytes().count(b"\n") for p in out.rglob("*") if p.is_file())
            shutil.rmtree(out, ignore_errors=True)
            return n

        return count

    me = [sys.executable, __file__, "--child"]
    out = {name: work / name for name in ("baseline", "baseline+fsync", "framework")}
    job = HERE / "jobs" / "file_to_file.yaml"
    return [
        *(
            Contender(n, [*me, n, str(inp), str(out[n])], fresh(out[n]), lines(out[n]))
            for n in ("baseline", "baseline+fsync")
        ),
        Contender(
            "framework",
            [str(BIN / "pipeline-run"), "run", str(job)],
            fresh(out["framework"]),
            lines(out["framework"]),
            env={"PIPELINE_BENCH_INPUT": str(inp), "PIPELINE_BENCH_OUTPUT": str(out["framework"])},
            cwd=work,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("WHICH", "INPUT", "OUT"))
    args = parser.parse_args()
    if args.child:
        run_baseline(args.child[1], args.child[2], fsync=args.child[0].endswith("+fsync"))
        return
    from harness import measure, report

    DATA.mkdir(exist_ok=True)
    inp = DATA / f"input-{args.records}.jsonl"
    make_input(inp, args.records)
    size_mb = inp.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(prefix="bench-file-", dir=DATA) as tmp:
        runs = measure(contenders(inp, Path(tmp)), args.repeat)
    title = f"{args.records:,} records ({size_mb:.0f} MB), Python {platform.python_version()}"
    print(report(title, runs, "baseline+fsync"))


if __name__ == "__main__":
    main()
