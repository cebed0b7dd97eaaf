"""Incremental checkpoints: which earlier checkpoints a checkpoint's state builds on.

A full checkpoint holds the whole state. An incremental one holds only the entries that
changed (and tombstones for those deleted) since the checkpoint before it, and lists in
``state_data["operator_state"]["chain"]`` every checkpoint a restore needs first, base
(a full one) first::

    "operator_state": {"backend": "lmdb", "bytes": 81234, "incremental": true,
                       "chain": [{"execution_id": "…", "checkpoint_id": 4,
                                  "path": "…/chk-000004", "bytes": 25165824}, …]}

A restore applies the base, then each delta of the chain, then the checkpoint's own.
Retention keeps every checkpoint that a kept one lists, whatever its age or number.
"""

from __future__ import annotations

from typing import Any

from pipeline_core.checkpoint.repository import CheckpointInfo

__all__ = ["Link", "chain_of", "link", "needed_by"]

#: one member of a chain: execution_id, checkpoint_id, path (in storage), bytes
Link = dict[str, Any]


def chain_of(info: CheckpointInfo) -> list[Link]:
    """The checkpoints ``info`` builds on, base first; empty for a full checkpoint."""
    operator_state = info.state_data.get("operator_state") or {}
    chain: list[Link] = operator_state.get("chain") or []
    return chain


def link(execution_id: str, checkpoint_id: int, path: str, size: int) -> Link:
    return {
        "execution_id": execution_id,
        "checkpoint_id": checkpoint_id,
        "path": path,
        "bytes": size,
    }


def needed_by(rows: list[CheckpointInfo]) -> set[tuple[str, int]]:
    """(execution_id, checkpoint_id) of every checkpoint that one of ``rows`` builds on."""
    return {(m["execution_id"], int(m["checkpoint_id"])) for r in rows for m in chain_of(r)}
