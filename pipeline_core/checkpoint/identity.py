"""Which source a checkpoint was taken from, and whether it may be restored into another.

A checkpoint's positions (Kafka offsets, file positions, keyset cursors) mean something
only for the source they were read from: offsets of one broker's partitions, restored
into a consumer of another broker or group, skip or repeat records while every
checkpoint says COMPLETED. So every source says what identifies it
(:meth:`~pipeline_core.io.Source.identity`: Kafka's brokers and group, a database's URL
and table …), the coordinator stores that with each checkpoint as ``source_identity``,
and a restore checks it:

- asked for by the user (``run --resume``, a savepoint, a retry of the same execution):
  a different identity is refused with :class:`~pipeline_core.errors.SourceChanged`,
  naming every difference;
- chosen by the framework (a new STREAMING execution continuing the job's newest
  offsets): a different identity means the user pointed the job at another source, so
  the execution starts fresh and says why.

Checkpoints from before identities were stored carry none and are restored unchecked.

A value the job took from a secret reference (``group_id: ${env:GROUP}``) is stored as
its reference plus a fingerprint of the value (``${env:GROUP} [sha256:…]``, the first
12 hex digits of its SHA-256): the value itself is never stored, and a reference that
now resolves to something else is a change all the same.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from pipeline_core.config.secrets import redact_data
from pipeline_core.errors import SourceChanged

if TYPE_CHECKING:
    from pipeline_core.checkpoint.repository import CheckpointInfo
    from pipeline_core.io import Source

__all__ = ["KEY", "differences", "source_identity", "url_identity", "verify_restore"]

log = logging.getLogger(__name__)

#: the key of ``state_data`` that holds it
KEY = "source_identity"


def url_identity(url: str) -> str:
    """A URL as an identity: scheme, host, port and path — no credentials, query or
    fragment (they may hold a password or an API key, and do not change what is read)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return url.split("@")[-1].split("?")[0]
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def source_identity(source: Source[Any], job_name: str) -> dict[str, Any] | None:
    """``source``'s identity as stored with a checkpoint (JSON; secrets the job resolved
    appear as their references), or None when the source has none."""
    identity = source.identity(job_name)
    if identity is None:
        return None
    plain = orjson.loads(orjson.dumps(identity, default=str))
    stored: dict[str, Any] = _fingerprinted(plain)
    return stored


_FINGERPRINT = " [sha256:"


def _fingerprinted(value: Any) -> Any:
    """``value`` (JSON) with each string that holds a resolved secret as its reference and
    the fingerprint of the value."""
    if isinstance(value, dict):
        return {k: _fingerprinted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fingerprinted(v) for v in value]
    if not isinstance(value, str):
        return value
    shown: str = redact_data(value)
    if shown == value:
        return value
    return f"{shown}{_FINGERPRINT}{hashlib.sha256(value.encode()).hexdigest()[:12]}]"


def _same(before: Any, now: Any) -> bool:
    """Equal, or equal but for the fingerprint a checkpoint stored before fingerprints
    were taken does not have."""
    if before == now:
        return True
    if isinstance(before, str) and isinstance(now, str) and _FINGERPRINT not in before:
        return before == now.split(_FINGERPRINT, 1)[0]
    if isinstance(before, list) and isinstance(now, list) and len(before) == len(now):
        return all(_same(b, n) for b, n in zip(before, now, strict=True))
    return False


def differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What changed, one phrase per key: ``group_id was 'a', now 'b'``."""
    changed = []
    for key in sorted(set(stored) | set(current)):
        before, now = stored.get(key), current.get(key)
        if not _same(before, now):
            changed.append(f"{key} was {before!r}, now {now!r}")
    return changed


def verify_restore(
    info: CheckpointInfo, identity: dict[str, Any] | None, *, chosen_by_framework: bool
) -> bool:
    """Whether ``info`` may be restored into a source of ``identity``: True if it may;
    False if the framework chose it and the source changed (start fresh); raises
    SourceChanged if the user asked for it and the source changed."""
    stored = info.state_data.get(KEY)
    if stored is None or identity is None:
        return True  # taken before identities were stored, or a source without one
    changed = differences(stored, identity)
    if not changed:
        return True
    where = f"checkpoint {info.checkpoint_id} of execution {info.execution_id}"
    what = "; ".join(changed)
    if chosen_by_framework:
        log.warning(
            "job %s: not continuing from %s: the source changed since (%s); starting fresh",
            info.job_name,
            where,
            what,
        )
        return False
    raise SourceChanged(
        f"job {info.job_name!r}: {where} was taken from another source ({what}); its "
        "positions would skip or repeat records here. Put the source back as it was to "
        "continue, or start fresh (run without --resume / --from-savepoint)"
    )
