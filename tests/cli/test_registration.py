"""One validation for every way in (docs/operations.md, "What is checked before a job is
stored"): ``validate``, ``jobs register``, ``jobs import`` and ``serve --jobs`` refuse the
same bad files and store none of them; dependencies must name registered jobs and close
no cycle."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN

GOOD_SOURCE = "source: {type: file, config: {path: in.jsonl}}\n"
GOOD_SINK = "sink: {type: file, config: {path: out/}}\n"

#: file name → (job file text, a phrase the error must contain)
BAD: dict[str, tuple[str, str]] = {
    "unknown-source": (
        "name: b1\nsource: {type: nosuch}\n" + GOOD_SINK,
        "unknown source type 'nosuch'",
    ),
    "unknown-sink": ("name: b2\n" + GOOD_SOURCE + "sink: {type: nope}\n", "unknown sink type"),
    "wrong-field-type": (
        "name: b3\nsource: {type: file, config: {path: in.jsonl, batch_size: many}}\n" + GOOD_SINK,
        "expected int, got 'many'",
    ),
    "unknown-field": (
        "name: b4\nsource: {type: file, config: {path: in.jsonl, pth: x}}\n" + GOOD_SINK,
        "unknown key",
    ),
    "missing-function": (
        "name: b5\n"
        + GOOD_SOURCE
        + "transform: [{type: map, function: 'nowhere:f'}]\n"
        + GOOD_SINK,
        "cannot import 'nowhere:f'",
    ),
    "os-system": (
        "name: b6\n"
        + GOOD_SOURCE
        + "transform: [{type: map, function: 'os:system'}]\n"
        + GOOD_SINK,
        "standard-library module",
    ),
    "a-folder-module-named-like-the-standard-library": (
        "name: b30\n"
        + GOOD_SOURCE
        + "transform: [{type: map, function: 'json:loads'}]\n"
        + GOOD_SINK,
        "'json' is a standard-library module name; rename the module",
    ),
    "builtins": (
        "name: b31\n"
        + GOOD_SOURCE
        + "transform: [{type: map, function: 'builtins:eval'}]\n"
        + GOOD_SINK,
        "'builtins' is a standard-library module name",
    ),
    "unknown-step": (
        "name: b7\n" + GOOD_SOURCE + "transform: [{type: teleport}]\n" + GOOD_SINK,
        "teleport",
    ),
    "bad-cron": (
        "name: b8\n" + GOOD_SOURCE + GOOD_SINK + "schedule: {type: CRON, cron: '61 * * * *'}\n",
        "cron",
    ),
    "unknown-dependency": (
        "name: b9\n"
        + GOOD_SOURCE
        + GOOD_SINK
        + "schedule: {type: DEPENDENCY, dependencies: [ghost]}\n",
        "depends on a job that is not registered: ghost",
    ),
    "self-dependency": (
        "name: b10\n"
        + GOOD_SOURCE
        + GOOD_SINK
        + "schedule: {type: DEPENDENCY, dependencies: [b10]}\n",
        "dependency cycle: b10 → b10",
    ),
    "dependencies-as-a-string": (
        "name: b15\n"
        + GOOD_SOURCE
        + GOOD_SINK
        + "schedule: {type: DEPENDENCY, dependencies: good}\n",
        "expected a list, got 'good'",
    ),
    "unknown-time-zone-on-a-manual-schedule": (
        "name: b16\n" + GOOD_SOURCE + GOOD_SINK + "schedule: {type: MANUAL, timezone: Mars/Base}\n",
        "unknown time zone 'Mars/Base'",
    ),
    "dependencies-on-a-cron-schedule": (
        "name: b17\n"
        + GOOD_SOURCE
        + GOOD_SINK
        + "schedule: {type: CRON, cron: '0 3 * * *', dependencies: [good]}\n",
        "dependencies is only for DEPENDENCY schedules",
    ),
    "through-an-imported-module": (
        "name: b18\n"
        + GOOD_SOURCE
        + "transform: [{type: map, function: 'helper_fns:os.system'}]\n"
        + GOOD_SINK,
        "'helper_fns:os.system' is refused",
    ),
    "an-aliased-module": (
        "name: b19\n"
        + GOOD_SOURCE
        + "transform: [{type: map, function: 'helper_fns:sp.getoutput'}]\n"
        + GOOD_SINK,
        "'helper_fns:sp.getoutput' is refused",
    ),
    "an-imported-function": (
        "name: b20\n"
        + GOOD_SOURCE
        + "transform: [{type: map, function: 'helper_fns:run'}]\n"
        + GOOD_SINK,
        "'helper_fns:run' is refused",
    ),
    "a-rebound-name": (
        "name: b27\n"
        + GOOD_SOURCE
        + "transform: [{type: map, function: 'helper_fns:system'}]\n"
        + GOOD_SINK,
        "'helper_fns:system' is refused: 'system' is bound by an assignment",
    ),
    "a-step-name-with-a-path": (
        "name: b28\n"
        + GOOD_SOURCE
        + "transform: [{type: filter, function: 'helper_fns:ident', name: ../../x}]\n"
        + GOOD_SINK,
        "'../../x' is not a valid name",
    ),
    "a-step-name-with-markup": (
        "name: b29\n"
        + GOOD_SOURCE
        + "transform: [{type: batch, size: 2, name: '<img src=x>'}]\n"
        + GOOD_SINK,
        "'<img src=x>' is not a valid name",
    ),
    "a-dunder-attribute": (
        "name: b21\n"
        + GOOD_SOURCE
        + "transform: [{type: map, function: 'helper_fns:ident.__globals__'}]\n"
        + GOOD_SINK,
        "no '_' names after the ':'",
    ),
    "unknown-event-trigger": (
        "name: b22\n"
        + GOOD_SOURCE
        + GOOD_SINK
        + "schedule: {type: EVENT, event_trigger: nope, event_topic: t}\n",
        "unknown event trigger 'nope'",
    ),
    "cron-that-never-fires": (
        "name: b23\n" + GOOD_SOURCE + GOOD_SINK + "schedule: {type: CRON, cron: '0 0 30 2 *'}\n",
        "never fires",
    ),
    "a-5000-digit-number": (
        "name: b24\n" + GOOD_SOURCE + GOOD_SINK + "description: " + "9" * 5000 + "\n",
        "invalid YAML: Exceeds the limit",
    ),
    "a-key-given-twice": (
        "name: b25\nname: b26\n" + GOOD_SOURCE + GOOD_SINK,
        "the key 'name' is given twice",
    ),
    "bad-name": ("name: ../../tmp/x\n" + GOOD_SOURCE + GOOD_SINK, "is not a valid name"),
    "unknown-state-backend": (
        "name: b12\n" + GOOD_SOURCE + GOOD_SINK + "config: {state_backend: redis}\n",
        "unknown state backend 'redis'",
    ),
    "alias-bomb": (
        "name: b13\n"
        + GOOD_SOURCE
        + GOOD_SINK
        + "a: &a [xxxxxxxxxx, xxxxxxxxxx, xxxxxxxxxx, xxxxxxxxxx, xxxxxxxxxx]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
            for i in range(7)
        ),
        "once its aliases are expanded",
    ),
    "deep-nesting": (
        "name: b14\n" + GOOD_SOURCE + GOOD_SINK + "description: " + "[" * 200 + "]" * 200 + "\n",
        "nested deeper than 64 levels",
    ),
}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "pipeline-run"), "--database", f"sqlite:///{cwd / 'meta.db'}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stored_jobs(cwd: Path) -> list[str]:
    with sqlite3.connect(cwd / "meta.db") as db:
        return [r[0] for r in db.execute("SELECT job_name FROM pipeline_job_definition")]


@pytest.fixture
def jobdir(tmp_path: Path) -> Path:
    d = tmp_path / "jobs"
    d.mkdir()
    for name, (text, _phrase) in BAD.items():
        (d / f"{name}.yaml").write_text(text)
    (d / "good.yaml").write_text("name: good\n" + GOOD_SOURCE + GOOD_SINK)
    (d / "in.jsonl").write_text("")
    # a module of the job's folder that imports what no job may reach
    (d / "helper_fns.py").write_text(
        "import os\nimport subprocess as sp\nfrom subprocess import run\n\n"
        "system = os.system\n\n\n"
        "def ident(r):\n    return r\n"
    )
    # modules of the folder named like the standard library: `os:system` and `json:loads`
    # would pass the folder's check and import the real module at run time
    (d / "os.py").write_text("def system(cmd):\n    return cmd\n")
    (d / "json.py").write_text("def loads(r):\n    return r\n")
    return d


def test_validate_register_and_import_refuse_the_same_files(jobdir: Path, tmp_path: Path) -> None:
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    for name, (_text, phrase) in BAD.items():
        path = str(jobdir / f"{name}.yaml")
        checked = run("validate", path, cwd=tmp_path)
        registered = run("jobs", "register", path, cwd=tmp_path)
        assert registered.returncode != 0, (name, registered.stdout)
        assert phrase in registered.stderr, (name, registered.stderr)
        assert "Traceback" not in registered.stderr, name
        assert checked.returncode == 2, (name, checked.stdout, checked.stderr)
        assert phrase in checked.stderr, (name, checked.stderr)
    assert stored_jobs(tmp_path) == []
    imported = run("jobs", "import", str(jobdir), cwd=tmp_path)
    assert imported.returncode == 2  # a bad job file, as validate and register
    assert imported.stdout.count("failed:") == len(BAD), imported.stdout
    assert stored_jobs(tmp_path) == ["good"]


def test_serve_jobs_stores_only_the_good_file(jobdir: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            str(BIN / "pipeline-run"),
            "--database",
            f"sqlite:///{tmp_path / 'meta.db'}",
            "serve",
            "--no-api",
            "--jobs",
            str(jobdir),
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("serving as"):
            break
    proc.terminate()
    proc.wait(timeout=30)
    text = "".join(lines)
    assert text.count("cannot import /") == len(BAD), text
    assert "1 added" in text
    assert stored_jobs(tmp_path) == ["good"]


def test_dependencies_need_registered_jobs_and_close_no_cycle(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    after = "schedule: {{type: DEPENDENCY, dependencies: [{}]}}\n"
    # a depends on z, whose file sorts later: the import still registers both
    (jobs / "a.yaml").write_text("name: a\n" + GOOD_SOURCE + GOOD_SINK + after.format("z"))
    (jobs / "z.yaml").write_text("name: z\n" + GOOD_SOURCE + GOOD_SINK)
    imported = run("jobs", "import", str(jobs), cwd=tmp_path)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert sorted(stored_jobs(tmp_path)) == ["a", "z"]
    # z after a would close a → z → a
    cyc = run("jobs", "schedule", "z", "--after", "a", cwd=tmp_path)
    assert cyc.returncode != 0
    assert "dependency cycle: z → a → z" in cyc.stderr, cyc.stderr
    # nor through a new version of z
    (jobs / "z.yaml").write_text("name: z\n" + GOOD_SOURCE + GOOD_SINK + after.format("a"))
    upd = run("jobs", "update", str(jobs / "z.yaml"), cwd=tmp_path)
    assert upd.returncode != 0 and "dependency cycle: z → a → z" in upd.stderr, upd.stderr
    ghost = run("jobs", "schedule", "z", "--after", "a,ghost", cwd=tmp_path)
    assert "not registered: ghost" in ghost.stderr and "cycle" in ghost.stderr
    shown = run("jobs", "schedule", "z", "--json", cwd=tmp_path)
    assert "DEPENDENCY" not in shown.stdout  # nothing was changed


def test_registering_runs_no_user_code_but_still_finds_a_missing_function(
    tmp_path: Path,
) -> None:
    """The control plane runs no user code: registering reads a function's module, it
    does not import it (a module with a side effect at import leaves no trace)."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    marker = tmp_path / "imported"
    (jobs / "sidefx.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef keep(r):\n    return True\n"
    )
    (jobs / "ok.yaml").write_text(
        "name: ok\n"
        + GOOD_SOURCE
        + "transform: [{type: filter, function: 'sidefx:keep'}]\n"
        + GOOD_SINK
    )
    (jobs / "typo.yaml").write_text(
        "name: typo\n"
        + GOOD_SOURCE
        + "transform: [{type: filter, function: 'sidefx:kep'}]\n"
        + GOOD_SINK
    )
    checked = run("validate", str(jobs / "ok.yaml"), str(jobs / "typo.yaml"), cwd=tmp_path)
    assert "sidefx.py has no attribute 'kep'" in checked.stderr, checked.stderr
    assert not marker.exists()  # validate imports no more than registering does
    imported = run("jobs", "import", str(jobs), cwd=tmp_path)
    assert "sidefx.py has no attribute 'kep'" in imported.stdout, imported.stdout
    assert stored_jobs(tmp_path) == ["ok"]
    assert not marker.exists()
    (jobs / "in.jsonl").write_text('{"a": 1}\n')  # next to the job file, like sidefx.py
    ran = run("run", str(jobs / "ok.yaml"), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert marker.exists()  # an execution does import it


#: one problem in every part of a job file, two in one component
NINE = (
    "name: nine\n"
    "source: {type: file, config: {path: in.jsonl, batch_size: abc, csv_delimiter: toolong}}\n"
    "transform: [{type: teleport}, {type: map, function: 'nowhere:f'}]\n"
    "sink: {type: file, config: {path: out/, bogus: 1}}\n"
    "config: {buffer_size: -1, parallelism: x}\n"
    "schedule: {type: CRON, cron: '61 * * * *'}\n"
)
NINE_PROBLEMS = [
    "source (file): field 'batch_size': expected int, got 'abc'",
    "source (file): field 'csv_delimiter'",
    "transform step 1: field 'type': unknown step type 'teleport'",
    "transform step 2 (map): field 'function': cannot import 'nowhere:f'",
    "sink (file): field 'bogus': unknown key",
    "config: field 'buffer_size': expected a number > 0, got -1",
    "config: field 'parallelism': expected int, got 'x'",
    "schedule: field 'cron': invalid cron expression",
]


def test_every_problem_of_a_file_is_reported_by_every_way_in(tmp_path: Path) -> None:
    (tmp_path / "nine.yaml").write_text(NINE)
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    for args in (["validate"], ["jobs", "register"], ["jobs", "import"]):
        proc = run(*args, str(tmp_path / "nine.yaml"), cwd=tmp_path)
        assert proc.returncode == 2, args  # docs/cli.md: a bad job file exits 2
        text = proc.stdout + proc.stderr
        missing = [p for p in NINE_PROBLEMS if p not in text]
        assert missing == [], (args, text)
    proc = run("validate", str(tmp_path / "nine.yaml"), cwd=tmp_path)
    assert proc.stderr.count("error: ") == len(NINE_PROBLEMS), proc.stderr  # one line each
    shown = json.loads(run("validate", str(tmp_path / "nine.yaml"), "--json", cwd=tmp_path).stdout)
    assert shown["ok"] is False and len(shown["errors"]) == len(NINE_PROBLEMS)
    assert "job" in shown, shown  # {"ok", "job", "errors"} as documented
    (tmp_path / "nameless.yaml").write_text("name: [1]\n" + GOOD_SOURCE + GOOD_SINK)
    assert (
        json.loads(run("validate", str(tmp_path / "nameless.yaml"), "--json", cwd=tmp_path).stdout)[
            "job"
        ]
        is None
    )
    assert stored_jobs(tmp_path) == []


#: a part that failed to parse hides none of its other problems: (text, the problems)
HIDDEN = {
    "a": (
        "config: {on_error: explode, dead_letter: {type: nosuch, config: {}}}\n",
        ["field 'on_error'", "unknown sink type 'nosuch'"],
    ),
    "b": (
        "config: {checkpoint_interval: soon, dead_letter: {type: file, "
        "config: {path: out/dl, nope: 1}}}\n",
        ["field 'checkpoint_interval'", "field 'nope': unknown key"],
    ),
    "c": (
        "schedule: {type: CRON, cron: '99 * * * *', timezone: Mars/Olympus}\n",
        ["unknown time zone 'Mars/Olympus'", "field 'cron': invalid cron expression"],
    ),
    "d": (
        "schedule: {type: DEPENDENCY, dependencies: [d], timezone: Mars/Olympus}\n",
        ["unknown time zone 'Mars/Olympus'", "dependency cycle: d → d"],
    ),
    "e": (
        "schedule: {type: DEPENDENCY, dependencies: [no-such-job], cron: '* * * * *'}\n",
        ["cron is only for CRON schedules", "not registered: no-such-job"],
    ),
}


def test_a_part_that_failed_hides_none_of_its_other_problems(tmp_path: Path) -> None:
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    (tmp_path / "in.jsonl").write_text("")
    for name, (part, problems) in HIDDEN.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"name: {name}\n" + GOOD_SOURCE + GOOD_SINK + part)
        for args in (["validate"], ["jobs", "register"]):
            proc = run(*args, str(path), cwd=tmp_path)
            assert proc.returncode == 2, (name, args, proc.stderr)
            missing = [p for p in problems if p not in proc.stderr]
            assert missing == [], (name, args, proc.stderr)
            assert proc.stderr.count("error: ") == len(problems), (name, args, proc.stderr)
    assert stored_jobs(tmp_path) == []


def test_validate_checks_dependencies_against_the_registry_and_the_files_given(
    tmp_path: Path,
) -> None:
    after = "schedule: {{type: DEPENDENCY, dependencies: [{}]}}\n"
    (tmp_path / "in.jsonl").write_text("")

    def job(name: str, *deps: str) -> str:
        text = f"name: {name}\n" + GOOD_SOURCE + GOOD_SINK
        if deps:
            text += after.format(", ".join(deps))
        (tmp_path / f"{name}.yaml").write_text(text)
        return str(tmp_path / f"{name}.yaml")

    # no database yet: the other files given are what there is, and none is created
    a, b = job("a"), job("b", "a")
    lone = run("validate", b, cwd=tmp_path)
    assert lone.returncode == 2 and "not registered: a" in lone.stderr, lone.stderr
    assert "no metadata database" in lone.stdout + lone.stderr
    assert not (tmp_path / "meta.db").exists()
    both = run("validate", a, b, cwd=tmp_path)
    assert both.returncode == 0, both.stdout + both.stderr
    assert "the 2 files given" in both.stdout, both.stdout
    ghost = job("g", "no-such-job")
    refused = run("validate", ghost, cwd=tmp_path)
    assert refused.returncode == 2
    assert "depends on a job that is not registered: no-such-job" in refused.stderr
    # a cycle among the files given, named
    c1, c2 = job("c1", "c2"), job("c2", "c1")
    cyc = run("validate", c1, c2, cwd=tmp_path)
    assert cyc.returncode == 2 and "dependency cycle: c1 → c2 → c1" in cyc.stderr, cyc.stderr
    # with a database: what is registered counts, and a new version closing a cycle is refused
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    assert run("jobs", "register", a, cwd=tmp_path).returncode == 0
    assert run("jobs", "register", b, cwd=tmp_path).returncode == 0
    now = run("validate", b, cwd=tmp_path)
    assert now.returncode == 0, now.stderr
    assert "2 jobs registered in sqlite:///" in now.stdout, now.stdout
    a2 = job("a", "b")
    closing = run("validate", a2, cwd=tmp_path)
    assert closing.returncode == 2 and "dependency cycle: a → b → a" in closing.stderr
    updated = run("jobs", "update", a2, cwd=tmp_path)
    assert updated.returncode == 2 and "dependency cycle: a → b → a" in updated.stderr


def test_a_cycle_within_one_import_is_named_as_a_cycle(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    after = "schedule: {{type: DEPENDENCY, dependencies: [{}]}}\n"
    (jobs / "cyc-a.yaml").write_text(
        "name: cyc-a\n" + GOOD_SOURCE + GOOD_SINK + after.format("cyc-b")
    )
    (jobs / "cyc-b.yaml").write_text(
        "name: cyc-b\n" + GOOD_SOURCE + GOOD_SINK + after.format("cyc-a")
    )
    for args in ([str(jobs)], [str(jobs / "cyc-a.yaml"), str(jobs / "cyc-b.yaml")]):
        imported = run("jobs", "import", *args, cwd=tmp_path)
        assert imported.returncode == 2
        assert "dependency cycle: cyc-a → cyc-b → cyc-a" in imported.stdout, imported.stdout
        assert "dependency cycle: cyc-b → cyc-a → cyc-b" in imported.stdout, imported.stdout
        assert "not registered" not in imported.stdout, imported.stdout
        assert stored_jobs(tmp_path) == []
