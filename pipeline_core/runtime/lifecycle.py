"""The execution lifecycle state machine of the original design.

::

    SCHEDULED → INITIALIZING → RUNNING ⇄ CHECKPOINTING → COMPLETED | FAILED | CANCELLED
    FAILED → SCHEDULED            (a retry, or a take-over after the owner instance died)

``REGISTERED`` is the state of a job that has no execution yet: an execution is created
by a trigger, already ``SCHEDULED``. Two edges are added to the original diagram so that
an execution can be cancelled before it runs: ``SCHEDULED → CANCELLED`` (also how a
trigger that found the job running is recorded: "skipped") and ``INITIALIZING →
CANCELLED``. ``CHECKPOINTING → CANCELLED`` is not an edge: a cancelled checkpoint first
returns to ``RUNNING``.
"""

from __future__ import annotations

from pipeline_core.errors import LifecycleError
from pipeline_core.runtime.result import ExecutionStatus as S

__all__ = ["ACTIVE", "TERMINAL", "TRANSITIONS", "can_transition", "check_transition"]

TRANSITIONS: dict[S | None, frozenset[S]] = {
    None: frozenset({S.REGISTERED, S.SCHEDULED}),
    S.REGISTERED: frozenset({S.SCHEDULED}),
    S.SCHEDULED: frozenset({S.INITIALIZING, S.CANCELLED}),
    S.INITIALIZING: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset({S.CHECKPOINTING, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.CHECKPOINTING: frozenset({S.RUNNING, S.FAILED}),
    S.FAILED: frozenset({S.SCHEDULED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}

#: States an execution never leaves (FAILED may still be retried: it is not in here).
TERMINAL = frozenset({S.COMPLETED, S.CANCELLED})
#: States in which an execution occupies its job (no-overlap rule) and needs an owner.
ACTIVE = frozenset({S.SCHEDULED, S.INITIALIZING, S.RUNNING, S.CHECKPOINTING})


def can_transition(current: S | str | None, target: S | str) -> bool:
    here = S(current) if current is not None else None
    return S(target) in TRANSITIONS[here]


def check_transition(current: S | str | None, target: S | str, execution_id: str = "") -> None:
    """Raise LifecycleError unless ``current → target`` is an edge of the state machine."""
    if not can_transition(current, target):
        allowed = ", ".join(sorted(TRANSITIONS[S(current) if current else None])) or "nothing"
        where = f"execution {execution_id!r}: " if execution_id else ""
        raise LifecycleError(
            f"{where}illegal transition {current} → {target} (from {current} allowed: {allowed})"
        )
