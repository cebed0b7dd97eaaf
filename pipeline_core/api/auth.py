"""API tokens: a read-only and an admin scope, checked against each route's scope.

Tokens come from the environment — ``PIPELINE_API_ADMIN_TOKENS`` and
``PIPELINE_API_READ_TOKENS`` (comma-separated; ``${file:/run/secrets/x}`` references are
resolved) — and/or ``PIPELINE_API_TOKENS_FILE``, a file of ``admin TOKEN`` / ``read
TOKEN`` lines (a Kubernetes secret mounted as a file). Requests carry
``Authorization: Bearer TOKEN``. Each route of the route table says what it needs
(``open``, ``read``, ``admin``, ``metrics``); ``/metrics`` is open unless
``PIPELINE_METRICS_PUBLIC=false``.

With no token configured, ``serve`` generates an admin token at first start
(:func:`generated_admin_token`, a 0600 file) and leaves reads open; a ``Tokens()`` with
nothing in it is a **read-only** API. Only ``Tokens(no_auth=True)`` (``serve --no-auth``)
lets anyone change things.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

import attrs

from pipeline_core.config.secrets import resolve_references
from pipeline_core.errors import PipelineError

__all__ = ["Refusal", "Tokens", "generated_admin_token"]


def _split(value: str | None) -> list[str]:
    if not value:
        return []
    # operator configuration: a ${file:…} token may live anywhere the operator says
    return [t.strip() for t in resolve_references(value, trusted=True).split(",") if t.strip()]


@attrs.frozen
class Refusal:
    status: int
    code: str
    message: str


@attrs.frozen
class Tokens:
    admin: frozenset[str] = frozenset()
    read: frozenset[str] = frozenset()
    metrics_public: bool = True
    #: reads need no token (the generated-token default of ``serve``)
    open_reads: bool = False
    #: nothing needs a token — ``serve --no-auth``, for local experiments only
    no_auth: bool = False
    #: where a generated admin token is kept, to say so in a 401
    generated_at: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.admin or self.read)

    def reads_need_token(self) -> bool:
        return not (self.no_auth or self.open_reads or not self.enabled)

    def check(self, need: str, authorization: str | None) -> tuple[str | None, Refusal | None]:
        """The caller's scope (``"admin"``, ``"read"`` or None) and, when the route's
        ``need`` is not met, why."""
        token = None
        if authorization and authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip()
        have = self.scope_of(token)
        if self.no_auth:
            return have or "admin", None
        if need == "open" or (need == "metrics" and self.metrics_public):
            return have, None
        if need in ("read", "metrics") and not self.reads_need_token():
            return have, None
        if token is not None and have is None:
            return None, Refusal(401, "unauthorized", "unknown token")
        if need == "admin" and not self.admin:
            return have, Refusal(
                403,
                "read_only",
                "the API is read-only: no admin token is configured (PIPELINE_API_ADMIN_TOKENS)",
            )
        if have is None:
            where = f" — serve generated one in {self.generated_at}" if self.generated_at else ""
            scope = "an admin" if need == "admin" else "a read or admin"
            return None, Refusal(
                401, "unauthorized", f"send Authorization: Bearer TOKEN ({scope} token){where}"
            )
        if need == "admin" and have != "admin":
            return have, Refusal(403, "forbidden", "this action needs an admin token")
        return have, None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tokens:
        env = os.environ if environ is None else environ
        admin = _split(env.get("PIPELINE_API_ADMIN_TOKENS"))
        read = _split(env.get("PIPELINE_API_READ_TOKENS"))
        path = env.get("PIPELINE_API_TOKENS_FILE")
        if path:
            for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                scope, _, token = line.partition(" ")
                if scope not in ("admin", "read") or not token.strip():
                    raise ValueError(
                        f"{path}:{n}: expected 'admin TOKEN' or 'read TOKEN', got {line[:20]!r}…"
                    )
                (admin if scope == "admin" else read).append(token.strip())
        public = env.get("PIPELINE_METRICS_PUBLIC", "true").lower() not in ("0", "false", "no")
        return cls(frozenset(admin), frozenset(read), public)

    def scope_of(self, token: str | None) -> str | None:
        """``"admin"``, ``"read"`` or None for an unknown token (constant-time compares)."""
        if not token:
            return None
        found = None
        for scope, tokens in (("admin", self.admin), ("read", self.read)):
            for t in tokens:
                if hmac.compare_digest(t.encode(), token.encode()):
                    found = found or scope
        return found


def generated_admin_token(path: Path) -> str:
    """The admin token kept in ``path``, created (random, mode 0600) if missing. A file
    that others can read is refused: the token would not be a secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PipelineError(
                f"{path} is readable by others (mode {stat.filemode(mode)}): "
                f"chmod 600 it or delete it to have a new token generated"
            ) from None
        token = path.read_text().strip()
        if token:
            return token
        path.unlink()
        return generated_admin_token(path)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token
