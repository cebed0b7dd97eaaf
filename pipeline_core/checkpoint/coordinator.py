"""The checkpoint coordinator: triggers barriers, takes and restores checkpoints.

Protocol (aligned barriers, one pipeline task):

1. A trigger (interval timer, record count, a source's ``checkpoint_after`` hint such as a
   finished page, a manual request) makes a checkpoint due. The single pipeline task
   checks after every batch, so the barrier is aligned by construction: every batch
   before it has gone through the operators, none after it has, and the position of the
   last one is the checkpoint's source position. One checkpoint at a time.
3. ``take``: the pending output is written to the sink; a ``PENDING`` row is recorded; the
   state backend and the operators' small states are snapshotted into a local directory;
   sinks ``prepare_commit``; the directory is uploaded to checkpoint storage; the row
   becomes ``COMPLETED`` with ``state_data`` (where a string holds a secret resolved by
   the job, its reference stands instead: see ``redact_data``). Only then do sinks and
   the source get ``on_checkpoint_complete``. Any failure marks the row ``FAILED`` and
   fails the job: the previous checkpoint stays intact and a retry resumes from it.
4. ``restore``: download the checkpoint (and, for an incremental one, the checkpoints
   it builds on), restore the backend and operators, let sinks finish what that
   checkpoint prepared, and hand the source its position.

Incremental checkpoints (a backend with ``incremental``, such as LMDB): a checkpoint
holds only the state entries changed since the previous completed one of this
execution attempt (or the one it restored), and names in its ``chain`` the checkpoints
a restore composes (see chain.py). A full one is taken instead for the first
checkpoint of an attempt that restored nothing, for savepoints (self-contained: they
outlive retention), after a failed checkpoint, after ``MAX_DELTAS`` deltas, once the
deltas add up to more than their base, and whenever the backend finds a delta not worth
it (most of the state changed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import orjson

from pipeline_core.checkpoint.chain import Link, chain_of, link
from pipeline_core.checkpoint.identity import KEY as IDENTITY_KEY
from pipeline_core.checkpoint.repository import CheckpointInfo, CheckpointRepository
from pipeline_core.checkpoint.retention import prune
from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.config.secrets import redact, redact_data, unredact_data
from pipeline_core.errors import CheckpointError
from pipeline_core.io import Sink
from pipeline_core.model.job import JobType, PipelineJob
from pipeline_core.runtime.listener import RunListener
from pipeline_core.runtime.operators import Operator
from pipeline_core.state.backend import StateBackend

__all__ = ["Barrier", "CheckpointCoordinator", "Wake", "checkpoint_type"]

log = logging.getLogger("pipeline_core.checkpoint")

_OPERATORS_FILE = "operators.pkl"


#: Seconds between checkpoints of a STREAMING job that sets no ``checkpoint_interval``: an
#: unbounded job must checkpoint (its offsets are committed only then). 5 s: a checkpoint
#: of a Kafka → Kafka job costs ~25 ms of pipeline time (0.5 % at this interval), and a
#: crash re-reads at most 5 s of input (docs/checkpoints.md).
STREAMING_INTERVAL = 5.0

#: The most of a job's time that checkpoints taken at page ends may cost: a page that ends
#: sooner after the last checkpoint is passed over. A checkpoint per page of an HTTP API
#: (pages of 1,000 every ~20 ms, checkpoints of 11-38 ms: SQLite rows, a checkpoint file,
#: the sink's COMMIT, each synced) doubled a paged API → PostgreSQL job's time; at 10 %
#: it checkpoints every few pages, and a crash re-reads those few.
PAGE_CHECKPOINT_SHARE = 0.1

#: Deltas on one base before a full checkpoint: bounds what a restore reads and applies,
#: and how many old checkpoints retention must keep for the newest ones.
MAX_DELTAS = 10


def checkpoint_type(job_type: JobType) -> str:
    """The original design's checkpoint types: STREAMING / ROLLER / SQL_TASK."""
    return {JobType.STREAMING: "STREAMING", JobType.BATCH_ROLLER: "ROLLER"}.get(
        job_type, "SQL_TASK"
    )


class Barrier:
    """Control item: take a checkpoint (or a named savepoint) here."""

    __slots__ = ("savepoint",)

    def __init__(self, savepoint: str | None = None) -> None:
        self.savepoint = savepoint

    def __repr__(self) -> str:
        return f"Barrier(savepoint={self.savepoint!r})"


class Wake:
    """Control item: an outside trigger fired; check whether a checkpoint is due."""

    __slots__ = ()


class CheckpointCoordinator:
    """Checkpoints of one execution. Created by the runner; never shared."""

    def __init__(
        self,
        *,
        job: PipelineJob,
        execution_id: str,
        repository: CheckpointRepository,
        storage: CheckpointStorage,
        backend: StateBackend[Any],
        operators: list[Operator],
        sinks: list[Sink[Any]],
        listener: RunListener,
        counts: Callable[[], dict[str, int]] | None = None,
        source_identity: dict[str, Any] | None = None,
    ) -> None:
        self.job = job
        self.execution_id = execution_id
        self.repository = repository
        self.storage = storage
        self.backend = backend
        self.operators = operators
        self.sinks = sinks
        self.listener = listener
        #: the execution's counts as of the barrier, stored with each checkpoint so that a
        #: resumed attempt continues the execution's totals
        self.counts = counts
        #: what the source reads from, stored with each checkpoint (see identity.py)
        self.source_identity = source_identity
        cfg = job.config
        self.interval = (
            cfg.checkpoint_interval.total_seconds()
            if cfg.checkpoint_interval
            else STREAMING_INTERVAL
            if job.type is JobType.STREAMING
            else None
        )
        self.every_records = cfg.checkpoint_every_records
        self.each_page = cfg.checkpoint_each_page
        self.next_id = 1
        self.records_since = 0
        self.completed: list[int] = []
        self._requests: list[str | None] = []
        self._waiters: list[asyncio.Future[int]] = []
        self._timer_due = False
        self._last_done = time.monotonic()
        #: seconds the last completed checkpoint took (page checkpoints are paced by it)
        self._last_cost = 0.0
        self._put: Any = None
        #: the newest completed (or the restored) checkpoint and those it builds on, base
        #: first: what the next delta builds on. None: the next checkpoint is full.
        self._chain: list[Link] | None = None

    # --- triggers ------------------------------------------------------------------
    #
    # One task processes batches in order, so "a barrier after batch k" is simply "take
    # the checkpoint after processing batch k": triggers only decide *when*. Triggers from
    # outside the pipeline task (timer, manual) also put a Wake item into the buffer so an
    # idle pipeline (a quiet broker) notices them.

    def attach(self, put_control: Any) -> None:
        """Where wake-ups go: the buffer's ``put_control``."""
        self._put = put_control

    def _wake(self) -> None:
        if self._put is not None:
            self._put(Wake())

    def due(self, records: int, page_end: bool, needed: bool = False) -> Barrier | None:
        """Called after each processed batch: the barrier to take now, if any.

        ``page_end``: the source finished a page (a natural place). It gets a checkpoint
        only while checkpoints cost at most :data:`PAGE_CHECKPOINT_SHARE` of the time:
        a page that ends sooner after the last checkpoint than that allows is passed
        over, and a later page end (or the timer, or the end of input) checkpoints it.
        ``needed``: the source needs one to go on (its unacknowledged window is
        filling), taken whatever it costs."""
        self.records_since += records
        if self._requests:
            return Barrier(self._requests.pop(0))
        if needed or self._timer_due:
            return Barrier()
        if page_end and self.each_page and self._page_checkpoint_affordable():
            return Barrier()
        if self.every_records is not None and self.records_since >= self.every_records:
            return Barrier()
        return None

    def _page_checkpoint_affordable(self) -> bool:
        since = time.monotonic() - self._last_done
        return since * PAGE_CHECKPOINT_SHARE >= self._last_cost * (1 - PAGE_CHECKPOINT_SHARE)

    async def checkpoint_now(self) -> int:
        """Request a checkpoint and wait until one completes (its id); raises if it fails."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self.request(None)
        return await fut

    def _settle(self, cid: int | None, exc: BaseException | None = None) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(cid or 0)

    def request(self, savepoint: str | None = None) -> None:
        """Manual trigger (Python API): a checkpoint, or a savepoint named ``savepoint``."""
        self._requests.append(savepoint)
        self._wake()

    async def run_timer(self) -> None:
        """Interval trigger, and manual requests made through the repository (other
        processes: ``pipeline-run checkpoints trigger``). Runs until cancelled."""
        tick = min(0.25, self.interval / 4) if self.interval else 1.0
        polled = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self.interval and not self._timer_due and now - self._last_done >= self.interval:
                self._timer_due = True
                self._wake()
            if now - polled >= 1.0:
                polled = now
                request = await asyncio.to_thread(self.repository.take_request, self.execution_id)
                if request is not None:
                    self.request(
                        request.removeprefix("savepoint:")
                        if request.startswith("savepoint:")
                        else None
                    )

    # --- taking --------------------------------------------------------------------

    async def take(self, barrier: Barrier | None, position: dict[str, Any] | None) -> int:
        """Take a checkpoint at ``position``; return its id."""
        cid = self.next_id
        self.next_id += 1
        job = self.job.name
        savepoint = barrier.savepoint if barrier else None
        started = time.monotonic()
        await asyncio.to_thread(
            self.repository.begin,
            job_name=job,
            execution_id=self.execution_id,
            checkpoint_id=cid,
            checkpoint_type=checkpoint_type(self.job.type),
            savepoint_name=savepoint,
        )
        self.listener.checkpoint_started(cid)
        local = self.storage.staging_dir()
        location = self.storage.location(job, self.execution_id, cid)
        base = self._delta_base(savepoint)
        self._chain = None  # until this one completes: a failed one is nobody's base
        try:
            self.backend.flush()
            size = None
            if base is not None:
                size = await asyncio.to_thread(self.backend.snapshot_delta, local)
            if size is None:
                base = None
                size = await asyncio.to_thread(self.backend.snapshot, local)
            small = {op.name: op.snapshot_state() for op in self.operators}
            small = {k: v for k, v in small.items() if v is not None}
            (local / _OPERATORS_FILE).write_bytes(pickle.dumps(small))
            sink_states = [await s.prepare_commit(cid) for s in self.sinks]
            state_data = {
                "checkpoint_id": cid,
                "timestamp": dt.datetime.now(dt.UTC)
                .replace(tzinfo=None)
                .isoformat(timespec="seconds"),
                "source_state": position or {},
                "operator_state": {
                    "backend": self.backend.type_name,
                    "operators": sorted(small),
                    "bytes": size,
                    "incremental": base is not None,
                    **({"chain": base} if base is not None else {}),
                },
                "sink_state": sink_states,
            }
            if self.source_identity is not None:
                state_data[IDENTITY_KEY] = self.source_identity
            if self.counts is not None:
                state_data["counts"] = self.counts()
            if savepoint:
                state_data["savepoint"] = savepoint
            # positions may hold a resolved secret (a path, a next-page URL): stored with
            # its reference instead, and given back on restore
            state_data = redact_data(state_data)
            (local / "_metadata.json").write_bytes(orjson.dumps(state_data, default=str))
            stored = await asyncio.to_thread(self.storage.upload, local, location)
            await asyncio.to_thread(
                self.repository.complete,
                execution_id=self.execution_id,
                checkpoint_id=cid,
                state_data=orjson.loads(orjson.dumps(state_data, default=str)),
                storage_path=location,
                size=stored,
            )
        except BaseException as exc:
            await asyncio.shield(
                asyncio.to_thread(
                    self.repository.fail,
                    execution_id=self.execution_id,
                    checkpoint_id=cid,
                    reason=redact(f"{type(exc).__name__}: {exc}"),
                )
            )
            self._settle(None, CheckpointError(f"checkpoint {cid} of job {job!r} failed: {exc}"))
            self.listener.checkpoint_failed(cid, exc)
            if isinstance(exc, Exception) and not isinstance(exc, CheckpointError):
                raise CheckpointError(
                    f"checkpoint {cid} of job {job!r} failed: {type(exc).__name__}: {exc}"
                ) from exc
            raise
        finally:
            shutil.rmtree(local, ignore_errors=True)
        # Durable: now commit downstream and upstream.
        self._chain = [*(base or []), link(self.execution_id, cid, location, size)]
        for s in self.sinks:
            await s.on_checkpoint_complete(cid)
        self.completed.append(cid)
        self._settle(cid)
        self.records_since = 0
        self._timer_due = False
        self._last_done = time.monotonic()
        self._last_cost = self._last_done - started
        cfg = self.job.config
        await asyncio.to_thread(
            prune,
            self.repository,
            self.storage,
            job,
            keep=cfg.checkpoint_retention,
            max_age=cfg.checkpoint_max_age,
        )
        log.info(
            "checkpoint %s of %s completed in %.3f s (%d bytes)",
            cid,
            job,
            time.monotonic() - started,
            stored,
        )
        self.listener.checkpoint_completed(cid, state_data)
        return cid

    def _delta_base(self, savepoint: str | None) -> list[Link] | None:
        """What the next checkpoint builds on; None: take a full one."""
        chain = self._chain
        if chain is None or savepoint or not self.backend.incremental:
            return None
        if len(chain) > MAX_DELTAS:
            return None
        if sum(int(m["bytes"]) for m in chain[1:]) > int(chain[0]["bytes"]):
            return None
        return chain

    # --- restoring -----------------------------------------------------------------

    async def restore(self, info: CheckpointInfo) -> dict[str, Any]:
        """Bring back the state of ``info``; returns the source position to resume at."""
        if info.storage_path is None:
            raise CheckpointError(
                f"checkpoint {info.checkpoint_id} of {info.execution_id} has no files"
            )
        state_data = unredact_data(info.state_data)  # the references the job resolved
        chain = chain_of(attrs.evolve(info, state_data=state_data))
        paths = [str(m["path"]) for m in chain] + [info.storage_path]
        downloads: list[Path] = []
        try:
            local = Path()
            for i, path in enumerate(paths):
                local = await asyncio.to_thread(self._fetch, path, downloads)
                if i == 0:
                    await asyncio.to_thread(self.backend.restore, local)
                else:
                    await asyncio.to_thread(self.backend.restore_delta, local)
            small = pickle.loads((local / _OPERATORS_FILE).read_bytes())
            for op in self.operators:
                if op.name in small:
                    op.restore_state(small[op.name])
        except (OSError, KeyError, ValueError, pickle.UnpicklingError) as exc:
            built_on = (
                f" (built on checkpoints {', '.join(str(m['checkpoint_id']) for m in chain)})"
                if chain
                else ""
            )
            raise CheckpointError(
                f"cannot restore checkpoint {info.checkpoint_id} of execution {info.execution_id} "
                f"from {info.storage_path}{built_on}: {exc}"
            ) from exc
        finally:
            for d in downloads:
                shutil.rmtree(d, ignore_errors=True)
        self._chain = (
            [*chain, link(info.execution_id, info.checkpoint_id, info.storage_path, _bytes(info))]
            if self.backend.incremental
            else None
        )
        sink_states = state_data.get("sink_state") or []
        for sink, state in zip(self.sinks, sink_states, strict=False):
            await sink.restore_commit(info.checkpoint_id, state)
        position: dict[str, Any] = state_data.get("source_state") or {}
        return position

    def _fetch(self, location: str, downloads: list[Path]) -> Path:
        """A checkpoint's directory on local disk: in place, or downloaded."""
        in_place = self.storage.local_path(location)
        if in_place is not None:
            if not in_place.is_dir():
                raise FileNotFoundError(f"no checkpoint files at {location}")
            return in_place
        local = Path(tempfile.mkdtemp(prefix="pipeline-restore-"))
        downloads.append(local)
        self.storage.download(location, local)
        return local


def _bytes(info: CheckpointInfo) -> int:
    return int((info.state_data.get("operator_state") or {}).get("bytes") or 0)
