"""Job files: every kind of mistake fails before anything runs, with one clear line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline_core import (
    BackpressureStrategy,
    ConfigError,
    JobType,
    OnError,
    load_job_file,
    load_plugins,
    prepare,
)

GOOD = """\
name: orders
type: BATCH_ROLLER
source:
  type: file
  config: {path: in.jsonl}
transform:
  - {type: filter, function: "fns:keep"}
  - {type: map, function: "fns:double"}
sink:
  type: file
  config: {path: out}
config:
  checkpoint_interval: 60000
  backpressure: DROP
  source_batch_size: 500
  on_error: skip
"""

FNS = """\
def keep(r):
    return r["n"] % 2 == 0

def double(r):
    return {**r, "n": r["n"] * 2}

NOT_CALLABLE = 42
"""


@pytest.fixture
def jobdir(tmp_path: Path) -> Path:
    (tmp_path / "fns.py").write_text(FNS)
    (tmp_path / "in.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(10)))
    return tmp_path


def write(jobdir: Path, text: str, name: str = "job.yaml") -> Path:
    p = jobdir / name
    p.write_text(textwrap.dedent(text))
    return p


def test_good_file_loads_into_the_model(jobdir: Path) -> None:
    job = load_job_file(write(jobdir, GOOD))
    assert job.name == "orders"
    assert job.type is JobType.BATCH_ROLLER
    assert job.config.backpressure is BackpressureStrategy.DROP
    assert job.config.on_error is OnError.SKIP
    assert job.config.source_batch_size == 500
    assert job.config.checkpoint_interval is not None
    assert job.config.checkpoint_interval.total_seconds() == 60
    assert [s.type for s in job.steps] == ["filter", "map"]
    prepared = prepare(job, load_plugins())
    assert len(prepared.stream) == 2


def test_json_file_is_accepted(jobdir: Path) -> None:
    import orjson
    import yaml

    data = yaml.safe_load(GOOD)
    job = load_job_file(write(jobdir, orjson.dumps(data).decode(), "job.json"))
    assert job.name == "orders"


# (what to change in GOOD, the text the one error line must contain)
MISTAKES = {
    "unknown connector type": (
        ("type: file\n  config: {path: in.jsonl}", "type: fiel\n  config: {path: in.jsonl}"),
        "job 'orders', source: field 'type': unknown source type 'fiel': did you mean 'file'? "
        "(installed source types: file",
    ),
    "unknown key": (
        ("{path: in.jsonl}", "{path: in.jsonl, pth: x}"),
        "job 'orders', source (file): field 'pth': unknown key (allowed: ",
    ),
    "wrong type": (
        ("source_batch_size: 500", "source_batch_size: abc"),
        "job 'orders', config: field 'source_batch_size': expected int, got 'abc'",
    ),
    "missing field": (
        ("config: {path: out}", "config: {prefix: x}"),
        "job 'orders', sink (file): field 'path': missing required field",
    ),
    "unimportable module": (
        ('"fns:double"', '"nosuchmodule:double"'),
        "job 'orders', transform step 2 (map): field 'function': cannot import "
        "'nosuchmodule:double': no module 'nosuchmodule' in the job's folder or "
        "PIPELINE_FUNCTION_PATH",
    ),
    "missing function": (
        ('"fns:double"', '"fns:triple"'),
        "job 'orders', transform step 2 (map): field 'function': cannot import 'fns:triple': "
        "fns.py has no attribute 'triple'",
    ),
    "not callable": (
        ('"fns:double"', '"fns:NOT_CALLABLE"'),
        "field 'function': 'fns:NOT_CALLABLE' is not callable (it is a int)",
    ),
    "bad enum value": (
        ("backpressure: DROP", "backpressure: FAST"),
        "job 'orders', config: field 'backpressure': expected one of BUFFER, DROP, LATEST, "
        "ERROR, got 'FAST'",
    ),
    "negative number": (
        ("source_batch_size: 500", "source_batch_size: -5"),
        "job 'orders', config: field 'source_batch_size': expected a number > 0, got -5",
    ),
    "bad duration": (
        ("checkpoint_interval: 60000", "checkpoint_interval: soon"),
        "job 'orders', config: field 'checkpoint_interval': expected a duration like '30s'",
    ),
    "unknown step type": (
        ("type: map, function", "type: mapp, function"),
        "job 'orders', transform step 2: field 'type': unknown step type 'mapp': "
        "did you mean 'map'",
    ),
    "unknown step option": (
        ('{type: filter, function: "fns:keep"}', '{type: filter, function: "fns:keep", fn: 1}'),
        "job 'orders', transform step 1 (filter): field 'fn': unknown key",
    ),
    "dead letter without sink": (
        ("on_error: skip", "on_error: dead_letter"),
        "job 'orders', config: field 'dead_letter': on_error is 'dead_letter' but no "
        "dead_letter sink is configured",
    ),
    # validation resolves no secret (an unset variable fails the run: tests/config)
    "secret file outside the secret directories": (
        ("{path: out}", "{path: '${file:/etc/hostname}'}"),
        "job 'orders', sink (file): field 'path': ${file:/etc/hostname} names a file "
        "outside the allowed secret directories (",
    ),
    "unknown top-level key": (
        ("type: BATCH_ROLLER", "type: BATCH_ROLLER\nschedules: daily"),
        "job 'orders': field 'schedules': unknown key (allowed: ",
    ),
    "schedule that is not a mapping": (
        ("type: BATCH_ROLLER", "type: BATCH_ROLLER\nschedule: daily"),
        "job 'orders', schedule: expected a mapping",
    ),
    "bad cron expression": (
        ("type: BATCH_ROLLER", "type: BATCH_ROLLER\nschedule: {type: CRON, cron: '0 25 * * *'}"),
        "job 'orders', schedule: field 'cron': invalid cron expression '0 25 * * *'",
    ),
    "unknown time zone": (
        (
            "type: BATCH_ROLLER",
            "type: BATCH_ROLLER\nschedule: {type: CRON, cron: '0 3 * * *', timezone: Moon/Base}",
        ),
        "job 'orders', schedule: field 'timezone': unknown time zone 'Moon/Base'",
    ),
    "bad job type": (
        ("type: BATCH_ROLLER", "type: STREAM"),
        "job 'orders': field 'type': expected one of STREAMING, BATCH_ROLLER, SQL_TASK, "
        "got 'STREAM'",
    ),
}


@pytest.mark.parametrize("kind", sorted(MISTAKES))
def test_each_mistake_gives_one_clear_message(jobdir: Path, kind: str) -> None:
    (old, new), expected = MISTAKES[kind]
    assert old in GOOD, kind
    path = write(jobdir, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        prepare(load_job_file(path), load_plugins())
    messages = [str(p) for p in info.value.problems]
    assert len(messages) == 1, messages
    assert expected in messages[0]


def test_invalid_yaml_names_file_line_and_column(jobdir: Path) -> None:
    path = write(jobdir, GOOD.replace("  type: file\n  config: {path: out}", "  type: [file\n"))
    with pytest.raises(ConfigError) as info:
        load_job_file(path)
    msg = str(info.value)
    assert str(path) in msg and "invalid YAML" in msg
    assert f"{path}:12:7:" in msg  # where the unclosed flow sequence breaks


def test_several_mistakes_are_all_reported(jobdir: Path) -> None:
    text = GOOD.replace("type: fil", "type: fiel", 1).replace('"fns:double"', '"fns:nope"')
    text = text.replace("config: {path: out}", "config: {}")
    with pytest.raises(ConfigError) as info:
        prepare(load_job_file(write(jobdir, text)), load_plugins())
    components = sorted(p.component or "" for p in info.value.problems)
    assert components == ["sink (file)", "source", "transform step 2 (map)"]


def test_missing_job_file() -> None:
    with pytest.raises(ConfigError, match=r"cannot read job file 'nope\.yaml'"):
        load_job_file("nope.yaml")
