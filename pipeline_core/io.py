"""Source and Sink: the two contracts a connector implements.

Records are plain Python objects (usually dicts) and always travel in batches: a source
yields :class:`Batch` objects, operators work on whole lists, a sink writes lists. The
guarantees below are what the runtime relies on; the conformance tests in
:mod:`pipeline_core.testing` check them.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, Generic, TypeVar

import attrs

__all__ = [
    "Batch",
    "DeliveryGuarantee",
    "FailedRecord",
    "RuntimeContext",
    "Sink",
    "Source",
    "SourceProgress",
]

C = TypeVar("C")


@attrs.define(slots=True)
class FailedRecord:
    """A record that could not be read or processed.

    ``where`` says where it came from (``data.jsonl:17`` or ``transform step 2 (map)``),
    ``error`` why it failed; ``record`` is the raw input (bytes/str from a source, the
    record itself from a step) so that nothing is lost when it goes to a dead-letter sink.
    """

    record: Any
    error: str
    where: str

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "error": self.error, "record": self.record}


class Batch:
    """Records read together, and the source position *after* the last of them.

    ``position`` is a JSON-serialisable dict; restoring a source with it must resume at
    the first record *not* in this batch (or any earlier batch). ``failures`` are input
    items the source could not decode; they count as failed records and follow the job's
    ``on_error`` policy.
    """

    __slots__ = ("checkpoint_after", "checkpoint_needed", "failures", "position", "records")

    def __init__(
        self,
        records: list[Any],
        position: dict[str, Any] | None = None,
        failures: list[FailedRecord] | None = None,
        checkpoint_after: bool = False,
        checkpoint_needed: bool = False,
    ) -> None:
        self.records = records
        self.position = position
        self.failures = failures
        #: A natural checkpoint point follows (a page or file is complete): the runtime
        #: takes one here when the job's ``checkpoint_each_page`` is on and checkpoints
        #: are cheap next to the work between them (see docs/checkpoints.md).
        self.checkpoint_after = checkpoint_after
        #: The source cannot go on without a checkpoint soon (a broker's window of
        #: unacknowledged messages is filling): the runtime takes one after this batch.
        self.checkpoint_needed = checkpoint_needed

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"Batch({len(self.records)} records, position={self.position!r})"


#: Records per batch when neither the job nor the component says otherwise: CPU-bound
#: local pipelines are fastest at 128 to 256 here (a larger batch falls out of the CPU cache).
DEFAULT_BATCH_SIZE = 256


@attrs.define(frozen=True, kw_only=True)
class RuntimeContext:
    """What a component knows about the execution it runs in."""

    job_name: str
    execution_id: str
    component: str
    #: Records per batch: the job's ``source_batch_size`` / ``sink_batch_size``, else the
    #: component's ``preferred_batch_size``, else :data:`DEFAULT_BATCH_SIZE`.
    batch_size: int = DEFAULT_BATCH_SIZE
    #: Unique per attempt: a retried or taken-over execution keeps its ``execution_id`` but
    #: runs with a new ``run_id``. Name what one attempt writes (part files, staging
    #: tags) after this, so that a retry never collides with the attempt before it.
    run_id: str = attrs.field(
        default=attrs.Factory(lambda self: self.execution_id, takes_self=True)
    )
    #: ``await ctx.checkpoint()``: take a checkpoint now and wait until it completed
    #: (returns its id); None when the execution has no checkpointing. For sources that
    #: must settle their position at a moment of their own (a Kafka rebalance).
    checkpoint: Callable[[], Awaitable[int]] | None = attrs.field(default=None, eq=False)
    #: No other execution of this job runs at the same time (the ownership rules; False
    #: when the job sets ``allow_concurrent``): a source may own every split itself
    #: instead of sharing them with other readers (Kafka: no consumer-group join).
    exclusive: bool = True


@attrs.frozen
class SourceProgress:
    """How far a bounded source is: ``done`` of ``total`` ``unit`` (total may be unknown)."""

    done: int
    total: int | None
    unit: str = "bytes"


class DeliveryGuarantee(enum.StrEnum):
    AT_LEAST_ONCE = "at-least-once"
    EXACTLY_ONCE = "exactly-once"


class Source(abc.ABC, Generic[C]):
    """Reads records in batches. One instance per execution.

    Call order, guaranteed by the runtime: ``open`` once, then ``read`` once (iterated
    until exhausted or cancelled), with ``on_checkpoint_complete`` between batches,
    then ``close`` — always, also after a failure or cancellation. Nothing is called
    after ``close``.

    Subclasses set ``type_name`` (the ``type:`` in a job file) and ``config_cls`` (an
    attrs class); the runtime constructs them as ``cls(config)``.
    """

    type_name: ClassVar[str]
    config_cls: ClassVar[type[Any]]
    #: False for unbounded sources (Kafka, RabbitMQ): ``read`` never ends by itself.
    bounded: ClassVar[bool] = True
    #: Records per batch this source reads fastest in; ``ctx.batch_size`` is this unless
    #: the job sets ``source_batch_size``. None: :data:`DEFAULT_BATCH_SIZE`.
    preferred_batch_size: ClassVar[int | None] = None

    def __init__(self, config: C) -> None:
        self.config = config

    async def open(self, ctx: RuntimeContext, restored_position: dict[str, Any] | None) -> None:
        """Acquire resources. ``restored_position`` is the ``position`` of the last batch
        of a completed checkpoint, or None for a fresh start; the source must derive
        where it resumes from this value alone."""
        self.ctx = ctx

    @abc.abstractmethod
    def read(self) -> AsyncIterator[Batch]:
        """Yield batches. Each batch's ``position`` is the position *after* its last record."""

    async def on_checkpoint_complete(self, checkpoint_id: int, position: dict[str, Any]) -> None:
        """A checkpoint covering everything up to ``position`` is durable: commit
        offsets / acknowledge messages up to there. Called in checkpoint order."""

    async def close(self) -> None:
        """Release resources. Idempotent; called exactly once by the runtime."""

    def progress(self) -> SourceProgress | None:
        """How far a bounded source is, for progress bars; None if unknown."""
        return None

    def check(self) -> list[str]:
        """What is wrong that can be seen without reading or connecting — an input path
        that does not exist — one message per problem (``pipeline-run validate`` prints
        them). Called instead of ``open``, on a source that is never opened; must be
        quick. Default: nothing to check."""
        return []

    async def check_connection(self) -> str | None:
        """Connect to what this source reads from and disconnect again, reading nothing
        (``pipeline-run validate --connect``): None when it is reachable, else what is
        wrong in one line. Called instead of ``open``. Default: None (nothing to reach)."""
        return None

    def identity(self, job_name: str) -> dict[str, Any] | None:
        """What this source reads from, as JSON-able values (Kafka: brokers and group; a
        database: its URL without credentials and the table). Stored with every
        checkpoint; a checkpoint is restored only into a source with the same identity,
        since its positions mean nothing elsewhere. Called before ``open``. Include what
        makes positions invalid when it changes, nothing that does not (batch sizes,
        timeouts); never a credential (:func:`pipeline_core.url_identity` drops them from
        a URL). The default: the source type; None: no check."""
        return {"type": getattr(self, "type_name", type(self).__name__)}


class Sink(abc.ABC, Generic[C]):
    """Writes batches of records. One instance per execution.

    Call order: ``open`` once; ``write`` for each batch, in order; at each checkpoint
    ``prepare_commit`` (flush everything written so far; return what a restarted sink
    needs to finish the commit) and, once the checkpoint is durable,
    ``on_checkpoint_complete`` (make it visible / commit the transaction). When a bounded
    job ends the runtime takes a final checkpoint the same way. ``close`` is always
    called last; data not covered by a completed checkpoint may then be discarded
    (two-phase sinks do discard it: that is what makes them exactly-once).
    """

    type_name: ClassVar[str]
    config_cls: ClassVar[type[Any]]
    guarantee: ClassVar[DeliveryGuarantee] = DeliveryGuarantee.AT_LEAST_ONCE
    #: Records per ``write`` call this sink writes fastest in (a database with a cost per
    #: call wants more than a local file); the runtime coalesces output up to this unless
    #: the job sets ``sink_batch_size``. None: :data:`DEFAULT_BATCH_SIZE`.
    preferred_batch_size: ClassVar[int | None] = None

    def __init__(self, config: C) -> None:
        self.config = config

    async def open(self, ctx: RuntimeContext) -> None:
        """Acquire resources."""
        self.ctx = ctx

    @abc.abstractmethod
    async def write(self, records: list[Any]) -> None:
        """Write one batch. May buffer; must not lose what it accepted before a
        ``prepare_commit`` returns."""

    async def prepare_commit(self, checkpoint_id: int) -> dict[str, Any] | None:
        """Flush; pre-commit. The returned dict is stored in the checkpoint."""
        return None

    async def on_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Commit what ``prepare_commit(checkpoint_id)`` prepared."""

    async def close(self) -> None:
        """Release resources; discard anything not committed. Idempotent."""

    async def finish(self) -> bool:
        """The input is exhausted and everything was written; the final checkpoint
        follows. Return True if that checkpoint must be taken even when nothing changed
        since the last one (a sink that publishes only at the end)."""
        return False

    async def restore_commit(self, checkpoint_id: int, prepared: dict[str, Any] | None) -> None:
        """Called after ``open`` when the execution resumes from checkpoint
        ``checkpoint_id``: finish committing what that checkpoint's ``prepare_commit``
        returned (``prepared``) if the crash came before ``on_checkpoint_complete``, and
        discard leftovers of the crashed run. Must be idempotent."""

    async def check_connection(self) -> str | None:
        """Connect to what this sink writes to and disconnect again, writing nothing
        (``pipeline-run validate --connect``): None when it is reachable, else what is
        wrong in one line. Called instead of ``open``. Default: None (nothing to reach)."""
        return None

    def describe_output(self) -> str | None:
        """One line for the run summary saying where committed output went, if useful."""
        return None
