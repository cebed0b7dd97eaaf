"""Commands import only what they use (docs/architecture.md, "Configuration and job files"): ``--help``,
``connectors`` and ``validate`` of a file job load no database, web or broker library,
and ``--help`` not even the models, the plugin discovery or rich — that is what keeps
``pipeline-run --help`` fast (figures: bench/startup.py). Checked by modules, not by
time."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, REPO

HEAVY = ["sqlalchemy", "alembic", "starlette", "uvicorn", "aiokafka", "httpx", "pika"]

#: what each command does not use, beyond HEAVY (a name covers its submodules)
UNUSED = {
    "--help": [
        "rich",
        "attr",
        "cattrs",
        "yaml",
        "orjson",
        "asyncio",
        "stevedore",
        "pluggy",
        "importlib.metadata",
        "pipeline_core.errors",
        "pipeline_core.model",
        "pipeline_core.plugins",
        "pipeline_core.cli.run",
    ],
    "run --help": ["pipeline_core.store", "pipeline_core.service", "lmdb"],
    "connectors": [
        "yaml",
        "cattrs",
        "asyncio",
        "lmdb",
        "rich.progress",
        "pipeline_core.model",
        "pipeline_core.runtime",
        "pipeline_connector_file.source",
    ],
    "validate examples/quickstart.yaml": [
        "fsspec",
        "lmdb",
        "rich.progress",
        "pipeline_core.checkpoint",
        "pipeline_core.runtime.runner",
        "pipeline_core.cli.run",
    ],
}

PROBE = """
import contextlib, io, json, sys
from pipeline_core.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # --help
        code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["run", "--help"], ["connectors"], ["validate", "examples/quickstart.yaml"]],
    ids=" ".join,
)
def test_a_command_imports_no_library_it_does_not_use(tmp_path: Path, args: list[str]) -> None:
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    proc = subprocess.run(
        [str(BIN / "python"), "-c", PROBE, *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["code"] == 0
    loaded = {m.partition(".")[0] for m in report["modules"]}
    assert "pipeline_core" in loaded  # the probe did run the command
    assert sorted(loaded & set(HEAVY)) == []
    unused = UNUSED[" ".join(args)]
    assert [m for m in report["modules"] if _under(m, unused)] == []


def _under(module: str, names: list[str]) -> bool:
    return any(module == n or module.startswith(f"{n}.") for n in names)
