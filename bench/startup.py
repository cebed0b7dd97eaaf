"""Start-up time of ``pipeline-run`` commands, whole process, against ``python -c pass``.

Each command is a fresh process (interpreter start-up and imports included), contenders
interleaved round by round; the table gives the median, min-max, CPU seconds and how
many modules the command imported. ``--imports`` also prints each command's most
expensive top-level imports (``python -X importtime``, which itself slows imports down:
compare those figures with each other, not with the table).

    .venv/bin/python -m compileall -q pipeline_core connectors/*/src   # as make setup does
    .venv/bin/python bench/startup.py --repeat 20 [--imports]

The byte-compile step matters where PYTHONDONTWRITEBYTECODE is set (this machine): a
source edited since ``make setup`` is compiled again by every process.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys

from harness import BIN, ROOT, Contender, Run, measure

PY = str(BIN / "python")
CLI = str(BIN / "pipeline-run")

#: what each command is measured against: the interpreter alone, and one C extension
BASELINES = [
    ("python -c pass", [PY, "-c", "pass"]),
    ('python -c "import orjson"', [PY, "-c", "import orjson"]),
]
COMMANDS = [
    ("pipeline-run --help", ["--help"]),
    ("pipeline-run validate", ["validate", "examples/quickstart.yaml"]),
    ("pipeline-run connectors", ["connectors"]),
]

#: runs a command in-process and prints how many modules it left imported
_COUNT = (
    "import contextlib, io, sys; from pipeline_core.cli.main import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try: main(sys.argv[1:])\n"
    "    except SystemExit: pass\n"
    "print(len(sys.modules))"
)


def module_count(argv: list[str]) -> int:
    proc = subprocess.run(
        [PY, "-c", _COUNT, *argv], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(proc.stdout.split()[-1])


def import_costs(argv: list[str], n: int) -> list[tuple[float, str]]:
    """The ``n`` top-level packages a command spends most import time in (their modules'
    own times summed, in ms, under ``-X importtime``)."""
    code = _COUNT.replace("print(len(sys.modules))", "")
    proc = subprocess.run(
        [PY, "-X", "importtime", "-c", code, *argv], cwd=ROOT, capture_output=True, text=True
    )
    own: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if m:
            package = m.group(2).partition(".")[0]
            own[package] = own.get(package, 0.0) + int(m.group(1)) / 1000
    return sorted(((ms, p) for p, ms in own.items()), reverse=True)[:n]


def table(runs: dict[str, list[Run]], modules: dict[str, int | None]) -> str:
    base = statistics.median(r.elapsed * 1000 for r in runs[BASELINES[0][0]])
    lines = [
        "| command | median | min-max | CPU | modules imported | minus `python -c pass` |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, rs in runs.items():
        times = [r.elapsed * 1000 for r in rs]
        med = statistics.median(times)
        count = modules.get(name)
        lines.append(
            f"| `{name}` | {med:.0f} ms | {min(times):.0f}-{max(times):.0f} ms "
            f"| {statistics.median(r.cpu for r in rs) * 1000:.0f} ms "
            f"| {count if count is not None else '-'} | {med - base:+.0f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--imports", action="store_true", help="also list import time by package")
    args = parser.parse_args()
    contenders = [Contender(name, argv, cwd=ROOT) for name, argv in BASELINES]
    contenders += [Contender(name, [CLI, *argv], cwd=ROOT) for name, argv in COMMANDS]
    modules: dict[str, int | None] = {name: module_count(argv) for name, argv in COMMANDS}
    runs = measure(contenders, args.repeat)
    print(f"{args.repeat} runs each, Python {sys.version.split()[0]}\n")
    print(table(runs, modules))
    if args.imports:
        for name, argv in COMMANDS:
            print(f"\n{name}: import time by package (importtime)")
            for ms, package in import_costs(argv, 10):
                print(f"  {ms:7.1f} ms  {package}")


if __name__ == "__main__":
    main()
