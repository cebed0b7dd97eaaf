"""Secret references: validation resolves none, the run names the reference in every
error, ``${file:…}`` reads only from the allowed secret directories, and whatever this
process resolved never shows in its messages or log records.

Each test uses its own variable and value: the redactor is process-wide."""

from __future__ import annotations

import base64
import io
import logging
import os
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest

from pipeline_core import ConfigError, PipelineJob, prepare, remember_secret
from pipeline_core.config.converter import FieldError
from pipeline_core.config.secrets import (
    MIN_PREFIX_LENGTH,
    redact,
    redact_data,
    resolve_references,
    secret_dirs,
    structure_config,
    unredact_data,
)
from pipeline_core.errors import shorten
from pipeline_core.plugins.manager import Plugins, load_plugins
from pipeline_core.runtime.runner import execute
from pipeline_core.testing import ListSink
from tests.service import flaky_plugin


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins(extra=[flaky_plugin])


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(variable name, value): a fresh secret in the environment."""
    name = f"PIPELINE_TEST_SECRET_{uuid.uuid4().hex[:8].upper()}"
    value = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv(name, value)
    return name, value


def with_source(type_name: str, **options: Any) -> PipelineJob:
    return PipelineJob.builder().name("j").source(type_name, **options).sink(ListSink()).build()


# --- validation resolves nothing ----------------------------------------------------------


def test_validation_resolves_no_secret(plugins: Plugins, secret: tuple[str, str]) -> None:
    name, value = secret
    ref = f"${{env:{name}}}"
    checked = [
        with_source("counter", count=ref),  # an int field: its type waits for the run
        with_source("counter", count=3, attempts_file=f"/tmp/{ref}"),
        with_source(
            "http", url="http://127.0.0.1:1/x", auth={"type": "bearer", "token": ref}
        ),  # nested
        with_source("file", path=[f"/data/{ref}/a.jsonl", "b.jsonl"]),  # in a list
        with_source("counter", count="${env:PIPELINE_TEST_NEVER_SET}"),
    ]
    for j in checked:
        prepare(j, plugins)
    assert redact(value) == value, "validation resolved (and so remembered) the secret"


def test_validation_still_checks_every_field_without_a_reference(plugins: Plugins) -> None:
    with pytest.raises(ConfigError) as info:
        prepare(with_source("counter", count="abc", batch="${env:X}", nope=1), plugins)
    assert sorted(str(p) for p in info.value.problems) == [
        "job 'j', source (counter): field 'count': expected int, got 'abc'",
        "job 'j', source (counter): field 'nope': unknown key (allowed: attempts_file, batch, "
        "count, delay, fail_at, failures)",
    ]


# --- the run: errors name the reference ---------------------------------------------------


def test_run_time_errors_name_the_reference_never_the_value(
    plugins: Plugins, secret: tuple[str, str]
) -> None:
    name, value = secret
    ref = f"${{env:{name}}}"
    cases = [
        (with_source("counter", count=ref), f"field 'count': expected int, got the value of {ref}"),
        (
            with_source("http", url="http://127.0.0.1:1/", auth={"type": ref}),
            f"field 'auth.type': expected one of bearer, basic, api_key, oauth2, "
            f"got the value of {ref}",
        ),
        (
            with_source("counter", count=3, batch=f"x{ref}"),
            f"field 'batch': expected int, got the resolved value of 'x{ref}'",
        ),
    ]
    for j, expected in cases:
        with pytest.raises(ConfigError) as info:
            prepare(j, plugins, resolve_secrets=True)
        assert expected in str(info.value)
        assert value not in str(info.value)
        # prepared for validation, the execution resolves: the same error is its failure
        result = _run(execute(prepare(j, plugins), plugins))
        assert result.status == "FAILED" and expected in (result.error or "")
        assert value not in (result.error or "")


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def test_an_unset_variable_fails_the_run_naming_it(plugins: Plugins) -> None:
    j = with_source("counter", count="${env:PIPELINE_TEST_NEVER_SET}")
    with pytest.raises(ConfigError) as info:
        prepare(j, plugins, resolve_secrets=True)
    assert str(info.value) == (
        "job 'j', source (counter): field 'count': environment variable "
        "'PIPELINE_TEST_NEVER_SET' is not set (${env:PIPELINE_TEST_NEVER_SET})"
    )
    assert resolve_references("${env:PIPELINE_TEST_NEVER_SET:-fallback}") == "fallback"


def test_a_connector_error_holding_the_value_shows_the_reference(
    plugins: Plugins, secret: tuple[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name, value = secret
    j = with_source("file", path=f"{tmp_path}/in-${{env:{name}}}.jsonl")
    result = _run(execute(prepare(j, plugins), plugins))
    assert result.status == "FAILED"
    assert f"in-${{env:{name}}}.jsonl' does not exist" in (result.error or "")
    assert value not in (result.error or "") + (result.error_trace or "") + caplog.text


# --- ${file:…} only from the allowed directories -------------------------------------------


def test_secret_dirs_default_and_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_SECRET_DIRS", raising=False)
    assert secret_dirs() == [
        Path("/run/secrets"),
        Path("/var/run/secrets"),
        Path.cwd() / ".pipeline" / "secrets",
    ]
    monkeypatch.setenv("PIPELINE_SECRET_DIRS", os.pathsep.join(["/a", "rel/b", ""]))
    assert secret_dirs() == [Path("/a"), Path.cwd() / "rel" / "b"]


def test_a_file_outside_the_secret_dirs_is_refused_at_validation_and_at_run_time(
    plugins: Plugins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = tmp_path / "secrets"
    allowed.mkdir()
    monkeypatch.setenv("PIPELINE_SECRET_DIRS", str(allowed))
    content = f"file-secret-{uuid.uuid4().hex}"
    outside = tmp_path / "elsewhere"
    outside.write_text(content)
    for path in (outside, allowed / ".." / "elsewhere", Path("/etc/hostname")):
        ref = f"${{file:{path}}}"
        with pytest.raises(ConfigError) as info:
            prepare(with_source("counter", count=3, attempts_file=ref), plugins)
        assert str(info.value) == (
            f"job 'j', source (counter): field 'attempts_file': {ref} names a file outside "
            f"the allowed secret directories ({allowed}; PIPELINE_SECRET_DIRS sets them)"
        )
    # a symlink inside points outside: the path as written passes validation (which
    # reads nothing), and the run refuses it once its symlinks are resolved
    (allowed / "link").symlink_to(outside)
    j = with_source("counter", count=f"${{file:{allowed / 'link'}}}")
    prepare(j, plugins)
    with pytest.raises(ConfigError, match="names a file outside the allowed secret dir"):
        prepare(j, plugins, resolve_secrets=True)
    assert redact(content) == content  # never read, so never remembered


def test_an_event_triggers_secret_file_is_checked_at_validation(
    plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_SECRET_DIRS", raising=False)
    j = (
        PipelineJob.builder()
        .name("j")
        .source("counter", count=3)
        .sink(ListSink())
        .schedule(
            type="EVENT",
            event_trigger="rabbitmq",
            event_topic="q",
            event_config={"url": "amqp://u:${file:/etc/passwd}@mq/", "ok": "${env:X}"},
        )
        .build()
    )
    with pytest.raises(ConfigError) as info:
        prepare(j, plugins)
    assert [str(p) for p in info.value.problems] == [
        "job 'j', schedule: field 'event_config.url': ${file:/etc/passwd} names a file "
        "outside the allowed secret directories (/run/secrets, /var/run/secrets, "
        f"{Path.cwd() / '.pipeline' / 'secrets'}; PIPELINE_SECRET_DIRS sets them)"
    ]


def test_a_file_inside_the_secret_dirs_is_read_where_the_job_runs(
    plugins: Plugins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_SECRET_DIRS", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".pipeline" / "secrets").mkdir(parents=True)
    (tmp_path / ".pipeline" / "secrets" / "count").write_text("7\n")
    j = with_source("counter", count="${file:.pipeline/secrets/count}")
    prepared = prepare(j, plugins, resolve_secrets=True)  # an int field takes "7" as 7
    assert prepared.make_source().config.count == 7
    token = f"tok-{uuid.uuid4().hex}"
    (tmp_path / ".pipeline" / "secrets" / "token").write_text(token + "\n")
    assert resolve_references("Bearer ${file:.pipeline/secrets/token}") == f"Bearer {token}"
    assert redact(f"rejected: Bearer {token}") == (
        "rejected: Bearer ${file:.pipeline/secrets/token}"
    )


def test_operator_configuration_may_read_any_file(tmp_path: Path) -> None:
    token = f"op-{uuid.uuid4().hex}"
    (tmp_path / "tokens").write_text(token)
    ref = f"${{file:{tmp_path / 'tokens'}}}"
    with pytest.raises(ValueError, match="outside the allowed secret directories"):
        resolve_references(ref)
    assert resolve_references(ref, trusted=True) == token


# --- the redactor ---------------------------------------------------------------------------


def test_redact_replaces_every_form_of_a_resolved_value(secret: tuple[str, str]) -> None:
    name, _ = secret
    ref = f"${{env:{name}}}"
    value = f"p@ss/w'rd+{uuid.uuid4().hex[:6]}"
    os.environ[name] = value  # restored by monkeypatch
    assert resolve_references(f"postgresql://app@db/app?password={ref}").endswith(value)

    for form in (value, repr(value)[1:-1], urllib.parse.quote(value, safe="")):
        assert redact(f"error near {form}!") == f"error near {ref}!"
    assert redact(redact(f"x {value}")) == f"x {ref}"  # redacting twice changes nothing
    short = "abc"
    os.environ[name + "_SHORT"] = short
    try:
        resolve_references(f"${{env:{name}_SHORT}}")
    finally:
        del os.environ[name + "_SHORT"]
    assert redact("abc abc") == "abc abc"  # too short to be a secret; would garble text


def test_positions_are_stored_with_references_and_restored_with_values(
    secret: tuple[str, str],
) -> None:
    name, value = secret
    ref = f"${{env:{name}}}"
    resolve_references(ref)
    position = {"file": f"/data/{value}/a.jsonl", "offset": 12, "files": [value, "x"]}
    stored = redact_data(position)
    assert stored == {"file": f"/data/{ref}/a.jsonl", "offset": 12, "files": [ref, "x"]}
    assert unredact_data(stored) == position
    # text that only looks like a reference the job did not resolve stays as it is
    assert unredact_data({"k": "${env:PIPELINE_API_ADMIN_TOKENS}"}) == {
        "k": "${env:PIPELINE_API_ADMIN_TOKENS}"
    }


def test_log_records_are_redacted(
    secret: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    name, value = secret
    resolve_references(f"${{env:{name}}}")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("some.library")
    log.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO):
            log.warning("connecting with %s", value)
            try:
                raise RuntimeError(f"refused: {value}")
            except RuntimeError:
                log.exception("it failed")
    finally:
        log.removeHandler(handler)
    for text in (caplog.text, stream.getvalue()):
        assert value not in text
        assert f"connecting with ${{env:{name}}}" in text
        assert f"RuntimeError: refused: ${{env:{name}}}" in text


def test_url_escaped_forms_are_redacted(secret: tuple[str, str]) -> None:
    name, _ = secret
    ref = f"${{env:{name}}}"
    value = f"p@ss w/rd+{uuid.uuid4().hex[:6]}&z=1"
    os.environ[name] = value  # restored by monkeypatch
    resolve_references(ref)
    for form in (
        urllib.parse.quote(value),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        urllib.parse.quote(value, safe="!$&'()*+,;=:@/"),  # httpx's path: p@ss%20w/rd+…
        urllib.parse.quote_plus(value, safe="!$'()*,;:@/?"),  # httpx's query
    ):
        assert redact(f"GET http://h/x/{form} answered 404") == f"GET http://h/x/{ref} answered 404"
    # a value that split a URL: its long pieces are masked wherever a parser put them
    host = value.split("@", 1)[1]
    assert redact(f"cannot connect to u:***@{host}@h/x") == f"cannot connect to u:***@{ref}@h/x"
    quoted = urllib.parse.quote(host, safe="")
    assert redact(f"failed to resolve host {quoted!r}") == f"failed to resolve host '{ref}'"
    escaped = f"p%40ss%2F{uuid.uuid4().hex[:6]}"  # written escaped in a URL, used unescaped
    os.environ[name] = escaped
    resolve_references(ref)
    assert redact(f"password {urllib.parse.unquote(escaped)} refused") == f"password {ref} refused"


def test_a_secret_cut_off_at_the_end_is_masked(secret: tuple[str, str]) -> None:
    name, value = secret
    ref = f"${{env:{name}}}"
    resolve_references(ref)
    message = "p" * 170 + f"Authorization: Bearer {value} and more"
    assert shorten(message) == shorten("p" * 170 + f"Authorization: Bearer {ref} and more")
    # cut before it was redacted (a library did it): the start of the secret still goes
    for end in ("", "...", "…", "'", '")'):
        cut = f"Bearer {value[: MIN_PREFIX_LENGTH + 3]}{end}"
        assert redact(cut) == f"Bearer {ref}{end}"
    short = f"Bearer {value[: MIN_PREFIX_LENGTH - 1]}"  # too short to tell from text
    assert redact(short) == short
    assert redact(f"{value[:12]} in the middle") == f"{value[:12]} in the middle"
    assert redact_data({"k": value[:12]}) == {"k": value[:12]}  # positions: exact only


def test_a_derived_credential_is_redacted_as_its_references(secret: tuple[str, str]) -> None:
    name, _ = secret
    ref = f"${{env:{name}}}"
    password = resolve_references(ref)
    header = base64.b64encode(f"u:{password}".encode()).decode()
    remember_secret(header, derived_from=f"u:{password}")
    assert redact(f"Authorization: Basic {header}") == f"Authorization: Basic {ref}"
    assert redact(f"Authorization: Basic {header[:10]}...") == f"Authorization: Basic {ref}..."
    literal = f"tok-{uuid.uuid4().hex}"  # from no reference: still a credential
    remember_secret(literal, derived_from="a password written in the job")
    assert redact(f"token {literal}") == "token ***"
    assert redact_data({"t": header}) == {"t": header}  # not a value a reference restores


@attrs.define(frozen=True, kw_only=True)
class _Typed:
    count: int = 0
    ratio: float = 0.0
    flag: bool = False
    name: str = ""
    limit: int | None = None


def test_a_reference_fills_number_and_boolean_fields(secret: tuple[str, str]) -> None:
    name, value = secret
    env = {f"{name}_N": "48213", f"{name}_F": " 0.5 ", f"{name}_B": "yes"}
    os.environ.update(env)
    try:
        config = structure_config(
            {
                "count": f"${{env:{name}_N}}",
                "ratio": f"${{env:{name}_F}}",
                "flag": f"${{env:{name}_B}}",
                "name": f"${{env:{name}}}",
                "limit": f"${{env:{name}_N}}",
            },
            _Typed,
        )
        assert config == _Typed(count=48213, ratio=0.5, flag=True, name=value, limit=48213)
        assert type(config.name) is str
        # a value that only filled numbers is configuration: counts stay readable
        assert redact(f"wrote 48213 records, {value}") == f"wrote 48213 records, ${{env:{name}}}"
        for data, expected in (
            ({"count": f"${{env:{name}}}"}, f"expected int, got the value of ${{env:{name}}}"),
            ({"flag": f"${{env:{name}}}"}, f"expected bool, got the value of ${{env:{name}}}"),
            (
                {"count": f"1${{env:{name}_N}}"},
                f"expected int, got the resolved value of '1${{env:{name}_N}}'",
            ),
        ):
            with pytest.raises(ConfigError) as info:
                structure_config(data, _Typed)
            assert expected in str(info.value) and value not in str(info.value)
    finally:
        for k in env:
            del os.environ[k]


@attrs.define(frozen=True, kw_only=True)
class _Url:
    url: str = ""


@pytest.mark.parametrize(
    ("template", "part", "chars"),
    [
        ("postgresql+psycopg://app:{ref}@127.0.0.1:5432/app", "user:password", "'@', '/', '?'"),
        ("amqp://guest:{ref}@127.0.0.1:1/%2F", "user:password", "'@', '/', '?'"),
        ("http://user:{ref}@127.0.0.1:8080/x", "user:password", "'@', '/', '?'"),
        ("http://{ref}:pw@h/x", "user:password", "'@', '/', ':'"),
        ("http://{ref}/x", "host", "'@', '/'"),
    ],
)
def test_a_value_that_would_split_a_urls_authority_is_refused(
    secret: tuple[str, str], template: str, part: str, chars: str
) -> None:
    name, _ = secret
    ref = f"${{env:{name}}}"
    value = "p@ss w/rd+Q9&z=1?" if "'?'" in chars else "p@ss w/rd:Q9&z=1"
    os.environ[name] = value
    url = template.format(ref=ref)
    with pytest.raises(ConfigError) as info:
        structure_config({"url": url}, _Url)
    (problem,) = info.value.problems
    assert problem.field == "url"
    assert f"the value of {ref} holds characters that end a URL's {part} part" in problem.message
    assert chars in problem.message and "percent-encode" in problem.message
    for piece in ("ss w", "rd+Q9", value):
        assert piece not in str(info.value)
    with pytest.raises(FieldError, match="percent-encode"):
        resolve_references(url, "url")


def test_a_value_that_fits_its_place_in_a_url_is_resolved(secret: tuple[str, str]) -> None:
    name, _ = secret
    ref = f"${{env:{name}}}"
    os.environ[name] = "p%40ss:w0rd&z=1"  # percent-encoded; ':' is fine in a password
    assert (
        structure_config({"url": f"http://u:{ref}@h/x"}, _Url).url == "http://u:p%40ss:w0rd&z=1@h/x"
    )
    os.environ[name] = "a/b@c?d"  # after the authority: the path and query are its own
    assert structure_config({"url": f"http://u@h/x/{ref}?q={ref}"}, _Url).url.startswith(
        "http://u@h/x/a/b@c"
    )
    assert structure_config({"url": ref}, _Url).url == "a/b@c?d"  # a whole value: as it is
    assert structure_config({"url": f"not a url {ref}"}, _Url).url == "not a url a/b@c?d"
