"""Secret references: ``${env:NAME}`` (``${env:NAME:-default}`` with a default) and
``${file:path}`` in config strings — and the redactor that keeps their values out of
every error, log line, row and checkpoint.

Job definitions keep the references (so a stored or exported definition never holds a
secret). Validation never resolves them: :func:`validate_config` checks a config with
its references in place (a field whose value holds a reference is type-checked only
where it is resolved) and refuses a ``${file:…}`` outside the allowed secret directories
without touching the file. They are resolved — :func:`structure_config` — only inside an
execution (the worker process, or the process of a foreground run) and by the scheduler
for an event trigger's options.

``${file:PATH}`` may only name a file under one of the allowed secret directories:
``PIPELINE_SECRET_DIRS`` (``os.pathsep``-separated), by default ``/run/secrets``,
``/var/run/secrets`` and ``.pipeline/secrets`` of the working directory. The path is
checked as written (``..`` collapsed) at validation, and with its symlinks resolved
before it is read. Operator configuration (the API's token variables) is trusted input:
``resolve_references(value, trusted=True)`` reads any file.

Every value resolved in a process is remembered by that process's redactor:
:func:`redact` replaces it (and its quoted / escaped forms) with the reference it came
from, so an error about ``postgresql://app:${env:DB_PASSWORD}@db/app`` says so instead of
showing the password. The framework applies it to every error message it stores or
sends to another process, to checkpoint metadata, and — through a log record factory
installed with the first resolved value — to every log record of the process. Values
shorter than :data:`MIN_REDACTED_LENGTH` characters are not redacted (they would garble
every message, and are no secret).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from pipeline_core.config.converter import FieldError, ResolvedText, structure
from pipeline_core.errors import ConfigError, Problem

__all__ = [
    "DEFAULT_SECRET_DIRS",
    "MIN_PREFIX_LENGTH",
    "MIN_REDACTED_LENGTH",
    "SECRET_DIRS_ENV",
    "check_references",
    "has_reference",
    "redact",
    "redact_data",
    "remember_secret",
    "resolve_references",
    "secret_dirs",
    "structure_config",
    "unredact_data",
    "validate_config",
]

T = TypeVar("T")

_REF = re.compile(r"\$\{(env|file):([^}]+)\}")

#: The environment variable naming the directories ``${file:…}`` may read from.
SECRET_DIRS_ENV = "PIPELINE_SECRET_DIRS"
#: Used when ``PIPELINE_SECRET_DIRS`` is not set (relative ones: from the working directory).
DEFAULT_SECRET_DIRS = ("/run/secrets", "/var/run/secrets", ".pipeline/secrets")
#: Resolved values shorter than this are not redacted.
MIN_REDACTED_LENGTH = 4
#: A text ending in at least this many first characters of a secret (it was cut there
#: before it was redacted) ends in the secret's reference instead.
MIN_PREFIX_LENGTH = 6


# --- allowed secret directories ---------------------------------------------------------


def secret_dirs() -> list[Path]:
    """The directories ``${file:…}`` references may read from (absolute, as configured)."""
    raw = os.environ.get(SECRET_DIRS_ENV)
    entries: Iterable[str] = (
        DEFAULT_SECRET_DIRS if raw is None else [e for e in raw.split(os.pathsep) if e.strip()]
    )
    return [Path(os.path.abspath(os.path.expanduser(e.strip()))) for e in entries]


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _outside_dirs(name: str, reference: str, *, real: bool) -> FieldError | None:
    """None if ``name`` is under an allowed directory; else the refusal. ``real``: resolve
    symlinks first (before reading); otherwise the path as written, ``..`` collapsed
    (validation touches no user-named file)."""
    dirs = secret_dirs()
    path = os.path.abspath(os.path.expanduser(name))
    allowed = {str(d) for d in dirs} | {os.path.realpath(d) for d in dirs}
    if real:
        path = os.path.realpath(path)
        allowed = {os.path.realpath(d) for d in dirs}
    if any(_within(path, d) for d in allowed):
        return None
    listing = ", ".join(str(d) for d in dirs) or "none"
    return FieldError(
        f"{reference} names a file outside the allowed secret directories ({listing}; "
        f"{SECRET_DIRS_ENV} sets them)"
    )


# --- the redactor ----------------------------------------------------------------------


#: The characters URL encoders leave alone besides letters, digits and ``_.-~``: none
#: (``quote(v, safe="")``), a path's ``/``, and httpx's path and query sets (RFC 3986).
_URL_SAFE = ("", "/", "!$&'()*+,;=:@/", "!$'()*,;:@/?")


def _forms(value: str) -> set[str]:
    """``value`` and the forms it takes in messages: repr- and JSON-escaped, URL-quoted
    (as ``quote``, ``quote_plus`` and httpx's URLs do it) and unquoted, and each line of
    a multi-line value."""
    forms = {value, value.strip(), repr(value)[1:-1], json.dumps(value)[1:-1]}
    for safe in _URL_SAFE:
        forms |= {urllib.parse.quote(value, safe=safe), urllib.parse.quote_plus(value, safe=safe)}
    forms.add(urllib.parse.unquote(value))  # a password written escaped in a URL
    forms |= {line.strip() for line in value.splitlines()}
    return {f for f in forms if len(f) >= MIN_REDACTED_LENGTH}


#: Pieces of a secret at least this long, between the characters that split a URL, are
#: redacted too (a value that split a URL's authority shows as its "host").
MIN_PIECE_LENGTH = 8


def _pieces(value: str) -> set[str]:
    """The forms of the starts and ends of ``value`` cut at a ``@``, ``:``, ``/``, ``?``
    or ``#`` (what a URL parser takes for a user, password, host or path), each of at
    least :data:`MIN_PIECE_LENGTH` characters."""
    pieces: set[str] = set()
    for i, c in enumerate(value):
        if c in "@:/?#":
            pieces |= {value[:i], value[i + 1 :]}
    return {f for p in pieces if len(p) >= MIN_PIECE_LENGTH for f in _forms(p)}


#: What a text may end with after the place it was cut: an ellipsis, closing quotes.
_CUT_END = " \t\r\n.…'\")]"


class _Redactor:
    """The values resolved in this process, each with the reference it came from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[str, str] = {}  # form of a value -> its reference
        self._exact: dict[str, str] = {}  # value exactly -> its reference
        self._values: dict[str, str] = {}  # reference -> value (to restore positions)
        self._pattern: re.Pattern[str] | None = None
        self._exact_pattern: re.Pattern[str] | None = None
        # forms long enough that a cut-off start of them is masked too, longest first
        self._prefixed: list[tuple[str, str]] = []

    def remember(self, value: str, reference: str, *, exact: bool = True) -> None:
        """Redact ``value`` (and its forms) as ``reference`` from now on. ``exact``: also
        in positions (:func:`redact_data`), where :meth:`unredact` must give the value
        back — only for a value the reference resolves to."""
        forms = _forms(value) | _pieces(value)
        with self._lock:
            if exact and len(value) >= MIN_REDACTED_LENGTH and reference not in self._values:
                self._values[reference] = value
            new = {f for f in forms if f not in self._refs}
            if not new:
                return
            for f in new:
                self._refs[f] = reference
            if exact and value in new:
                self._exact[value] = reference
            self._prefixed = sorted(
                ((f, r) for f, r in self._refs.items() if len(f) > MIN_PREFIX_LENGTH),
                key=lambda fr: len(fr[0]),
                reverse=True,
            )
            self._pattern = self._exact_pattern = None
        _install_log_redaction()

    def forget(self, reference: str) -> None:
        """Stop redacting what ``reference`` resolved to (its value filled a number or
        boolean field: configuration, not a secret, and it would garble every count)."""
        with self._lock:
            self._values.pop(reference, None)
            for table in (self._refs, self._exact):
                for form in [f for f, r in table.items() if r == reference]:
                    del table[form]
            self._prefixed = [(f, r) for f, r in self._prefixed if r != reference]
            self._pattern = self._exact_pattern = None

    def known(self) -> set[str]:
        with self._lock:
            return set(self._refs.values())

    def _cut_prefix(self, text: str) -> str:
        """``text`` with a cut-off start of a secret at its end (a message shortened before
        it was redacted) replaced by the reference: at least :data:`MIN_PREFIX_LENGTH`
        characters of a form, followed only by an ellipsis or closing quotes."""
        body = text.rstrip(_CUT_END)
        for form, reference in self._prefixed:
            key = form[:MIN_PREFIX_LENGTH]
            i = body.find(key, max(0, len(body) - len(form) + 1))
            while i != -1:
                if form.startswith(body[i:]):
                    return body[:i] + reference + text[len(body) :]
                i = body.find(key, i + 1)
        return text

    @staticmethod
    def _compile(values: Iterable[str]) -> re.Pattern[str]:
        # References first, so that redacting twice changes nothing; then the longest
        # values, so that a value containing another one is replaced whole.
        alternatives = [
            _REF.pattern,
            *(re.escape(v) for v in sorted(values, key=len, reverse=True)),
        ]
        return re.compile("|".join(alternatives))

    def redact(self, text: str, *, exact: bool = False) -> str:
        table = self._exact if exact else self._refs
        if not table or not text:
            return text
        with self._lock:
            pattern = self._exact_pattern if exact else self._pattern
            if pattern is None:
                pattern = self._compile(table)
                if exact:
                    self._exact_pattern = pattern
                else:
                    self._pattern = pattern
        text = pattern.sub(lambda m: table.get(m.group(0), m.group(0)), text)
        return text if exact else self._cut_prefix(text)

    def unredact(self, text: str) -> str:
        if not self._values or "${" not in text:
            return text
        values = self._values
        return _REF.sub(lambda m: values.get(m.group(0), m.group(0)), text)

    @property
    def active(self) -> bool:
        return bool(self._refs)


_redactor = _Redactor()


def redact(text: str) -> str:
    """``text`` with every secret value resolved in this process replaced by its reference
    (a text that ends in the cut-off start of one ends in its reference). Redact a
    message before shortening it: a cut value no longer matches."""
    return _redactor.redact(text)


def remember_secret(value: str, *, derived_from: str) -> None:
    """Redact ``value`` from now on: a credential a connector builds from resolved config
    (``derived_from``: the config strings it came from, e.g. ``f"{user}:{password}"``) —
    a basic-auth header's base64, a fetched OAuth2 access token, a signed URL. It shows
    as the references ``derived_from`` held (``Authorization: Basic ${env:PASSWORD}``),
    or as ``***`` if it held none. Values shorter than :data:`MIN_REDACTED_LENGTH`
    characters are ignored."""
    if len(value) < MIN_REDACTED_LENGTH:
        return
    references = (m.group(0) for m in _REF.finditer(_redactor.redact(derived_from)))
    shown = "+".join(dict.fromkeys(references))
    _redactor.remember(value, shown or "***", exact=False)


def _map_strings(value: Any, fn: Any) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {_map_strings(k, fn): _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, tuple):
        return tuple(_map_strings(v, fn) for v in value)
    return value


def redact_data(value: Any) -> Any:
    """A JSON-like value (a checkpoint's positions) with every string that holds a value
    resolved in this process holding its reference instead. Only exact values are
    replaced, so that :func:`unredact_data` gives the original back."""
    if not _redactor.active:
        return value
    return _map_strings(value, lambda s: _redactor.redact(s, exact=True))


def unredact_data(value: Any) -> Any:
    """The inverse of :func:`redact_data` for the references this process resolved (a
    restored position gets its values back; a reference this process did not resolve —
    text that only looks like one — stays as it is)."""
    return _map_strings(value, _redactor.unredact)


# --- log records -----------------------------------------------------------------------

_log_lock = threading.Lock()
_log_installed = False


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:
        return  # logging reports the bad format string itself
    clean = _redactor.redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean = _redactor.redact(text)
        if clean != text:
            record.exc_text = clean  # formatters use it instead of formatting exc_info
    if record.stack_info:
        record.stack_info = _redactor.redact(record.stack_info)


def _install_log_redaction() -> None:
    """Redact every log record of this process from now on (a record factory: it covers
    every logger and handler, the framework's and the libraries')."""
    global _log_installed
    with _log_lock:
        if _log_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _log_installed = True


# --- checking and resolving --------------------------------------------------------------


def has_reference(value: Any) -> bool:
    """Whether ``value`` (a string, or a dict / list of them) holds a secret reference."""
    if isinstance(value, str):
        return "${" in value and _REF.search(value) is not None
    if isinstance(value, dict):
        return any(has_reference(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_reference(v) for v in value)
    return False


def _walk(value: Any, field: str) -> Iterable[tuple[str, str]]:
    """(field, string) for every string in ``value`` that holds a reference."""
    if isinstance(value, str):
        if "${" in value:
            yield field, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{field}.{k}" if field else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _walk(v, f"{field}[{i}]")


def check_references(value: Any, field: str = "") -> list[FieldError]:
    """The problems of ``value``'s references that show without resolving them: a
    ``${file:…}`` outside the allowed secret directories. Reads no file."""
    problems = []
    for where, text in _walk(value, field):
        for m in _REF.finditer(text):
            if m.group(1) == "file":
                problem = _outside_dirs(m.group(2).strip(), m.group(0), real=False)
                if problem is not None:
                    problem.field = where or None
                    problems.append(problem)
    return problems


def _resolve_one(kind: str, name: str, reference: str, trusted: bool) -> str:
    if kind == "env":
        name, has_default, default = name.partition(":-")
        value = os.environ.get(name.strip())
        if value is None:
            if has_default:
                return default  # the job file's own text: no secret
            raise FieldError(f"environment variable {name.strip()!r} is not set ({reference})")
    else:
        if not trusted:
            refused = _outside_dirs(name, reference, real=True)
            if refused is not None:
                raise refused
        try:
            value = Path(name).expanduser().read_text().rstrip("\n")
        except OSError as exc:
            raise FieldError(f"cannot read secret file {name!r}: {exc.strerror}") from None
    _redactor.remember(value, reference)
    return value


_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
#: What ends or splits a URL's authority, in the order a problem lists them; ``:`` only
#: in the user part (a password may hold it, a host's ends in the port).
_AUTHORITY_ENDS = "@/?#"
_ENCODED = {c: urllib.parse.quote(c, safe="") for c in _AUTHORITY_ENDS + ":"}


def _authority_places(value: str) -> dict[int, str]:
    """For a URL (``scheme://…``) holding references in its authority (up to the first
    ``/``, ``?`` or ``#`` of the text as written): the start of each such reference → the
    part it is in, ``"user"``, ``"password"`` or ``"host"``. Empty for any other text."""
    start = _URL_START.match(value)
    if start is None:
        return {}
    masked = _REF.sub(lambda m: "\0" * len(m.group(0)), value)  # a file path's '/' is no end
    end = len(masked)
    for c in "/?#":
        i = masked.find(c, start.end())
        if i != -1:
            end = min(end, i)
    at = masked.rfind("@", start.end(), end)
    colon = masked.find(":", start.end(), at) if at != -1 else -1
    places = {}
    for m in _REF.finditer(value, start.end(), end):
        if at == -1 or m.start() > at:
            places[m.start()] = "host"
        elif colon == -1 or m.start() < colon:
            places[m.start()] = "user"
        else:
            places[m.start()] = "password"
    return places


def _splits_authority(resolved: str, place: str, reference: str) -> FieldError | None:
    """The refusal of a value that would end or split its part of a URL's authority (the
    rest of it would be taken for the host, and shown): it names the reference only."""
    ends = _AUTHORITY_ENDS + (":" if place == "user" else "")
    found = [c for c in ends if c in resolved]
    if not found:
        return None
    part = "host" if place == "host" else "user:password"
    chars = ", ".join(repr(c) for c in found)
    encoded = ", ".join(f"{c} as {_ENCODED[c]}" for c in found)
    return FieldError(
        f"the value of {reference} holds characters that end a URL's {part} part "
        f"({chars}); percent-encode them in the value ({encoded})"
    )


def _resolve(
    value: Any, field: str, trusted: bool, problems: list[FieldError], *, mark: bool = False
) -> Any:
    """``value`` resolved; ``mark``: a string that is one reference becomes ResolvedText
    (for structuring: a number field parses it)."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        whole = _REF.fullmatch(value.strip()) if mark else None
        places = _authority_places(value)

        def one(m: re.Match[str]) -> str:
            try:
                resolved = _resolve_one(m.group(1), m.group(2).strip(), m.group(0), trusted)
                place = places.get(m.start())
                refused = place and _splits_authority(resolved, place, m.group(0))
                if refused:
                    raise refused
                return resolved
            except FieldError as exc:
                exc.field = field or None
                problems.append(exc)
                return m.group(0)

        text = _REF.sub(one, value)
        if whole is None or problems:
            return text
        resolved = ResolvedText(text)
        resolved.reference = whole.group(0)
        return resolved
    if isinstance(value, dict):
        return {
            k: _resolve(v, f"{field}.{k}" if field else str(k), trusted, problems, mark=mark)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _resolve(v, f"{field}[{i}]", trusted, problems, mark=mark) for i, v in enumerate(value)
        ]
    return value


def resolve_references(value: Any, field: str = "", *, trusted: bool = False) -> Any:
    """Return ``value`` with every ``${env:…}`` / ``${file:…}`` in its strings replaced.

    Raises FieldError (naming the reference, never a value) for an unset variable, an
    unreadable file or — unless ``trusted`` (operator configuration, not a job) — a file
    outside the allowed secret directories. Every resolved value is remembered by this
    process's redactor."""
    problems: list[FieldError] = []
    resolved = _resolve(value, field, trusted, problems)
    if problems:
        raise problems[0]
    return resolved


# --- structuring a config that may hold references --------------------------------------

_MISSING = object()
_STEP = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")


def _at(value: Any, field: str | None) -> Any:
    """The value at a problem's ``field`` path (``a.b[0].c``); _MISSING if there is none.
    A reference on the way (``a`` holds ``${env:X}``, the problem is about ``a.b``) is
    returned itself: the problem is about it."""
    if not field:
        return value
    for index, key in _STEP.findall(field):
        if isinstance(value, str) and has_reference(value):
            return value
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError, ValueError):
            return _MISSING
    return value


def _describe(raw: Any) -> str:
    if isinstance(raw, str) and _REF.fullmatch(raw.strip()):
        return f"the value of {raw.strip()}"
    return f"the resolved value of {raw!r}"


def _explain(problem: Problem, raw: Any, resolved: Any) -> Problem:
    """A structuring problem of a resolved config, naming the reference its field held."""
    message = problem.message
    held = _at(raw, problem.field)
    if held is not _MISSING and has_reference(held):
        value = _at(resolved, problem.field)
        if value is not _MISSING:
            message = message.replace(repr(value), _describe(held))
            if isinstance(value, str) and len(value) >= MIN_REDACTED_LENGTH:
                message = message.replace(value, _describe(held))
    return Problem(
        redact(message), job=problem.job, component=problem.component, field=problem.field
    )


def _problems(
    errors: Iterable[FieldError], job: str | None, component: str | None
) -> list[Problem]:
    return [Problem(e.message, job=job, component=component, field=e.field) for e in errors]


def validate_config(
    data: Any, cls: type[Any], *, job: str | None = None, component: str | None = None
) -> None:
    """Check a component's (or trigger's) ``config`` against ``cls`` without resolving its
    references (validation: at registration, ``validate``). A field whose value holds a
    reference cannot be type-checked before it is resolved, so its problems are left to
    the run; a ``${file:…}`` outside the allowed secret directories is refused (reading
    nothing). Raises ConfigError with one Problem per mistake."""
    problems = _problems(check_references(data), job, component)
    try:
        structure(data, cls, job=job, component=component)
    except ConfigError as exc:
        problems += [p for p in exc.problems if not has_reference(_at(data, p.field))]
    if problems:
        raise ConfigError(problems)


def structure_config(
    data: Any, cls: type[T], *, job: str | None = None, component: str | None = None
) -> T:
    """Resolve the references of a component's (or trigger's) ``config`` and structure it
    into ``cls`` — inside the execution only. A field that is one reference takes its
    value converted to the field's type (``batch_size: ${env:BATCH}`` with ``BATCH=500``
    is 500; ``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0`` for a
    boolean). Raises ConfigError with one Problem per mistake; a problem of a field that
    held a reference names the reference, never the value (``expected int, got the value
    of ${env:BATCH}``)."""
    static = check_references(data)
    if static:
        raise ConfigError(_problems(static, job, component))
    known = _redactor.known()
    unresolved: list[FieldError] = []
    resolved = _resolve(data, "", False, unresolved, mark=True)
    if unresolved:
        raise ConfigError(_problems(unresolved, job, component))
    try:
        config = structure(resolved, cls, job=job, component=component)
    except ConfigError as exc:
        raise ConfigError([_explain(p, data, resolved) for p in exc.problems]) from None
    _forget_numbers(data, resolved, known)
    return config


def _forget_numbers(data: Any, resolved: Any, known: set[str]) -> None:
    """Stop redacting the values of references that only filled number or boolean fields
    (a ``batch_size: ${env:BATCH}`` of 1000 would turn every "1000" in a message into
    the reference): configuration, not secrets. A reference this process resolved before
    or that this config also uses in text stays redacted."""
    filled: dict[str, list[bool]] = {}
    for text in _strings(resolved):
        if type(text) is ResolvedText:
            filled.setdefault(text.reference, []).append(text.parsed)
    if not filled:
        return
    uses: dict[str, int] = {}
    for _, text in _walk(data, ""):
        for m in _REF.finditer(text):
            uses[m.group(0)] = uses.get(m.group(0), 0) + 1
    for reference, parsed in filled.items():
        if all(parsed) and uses.get(reference) == len(parsed) and reference not in known:
            _redactor.forget(reference)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)
