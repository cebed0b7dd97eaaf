"""Test helpers for the core's own tests and for connector authors.

- :class:`MemorySource` — records from a list, with :data:`EOF` / :data:`ABORT` /
  :data:`PAUSE` sentinels;
  its position is the index of the next record, so restore tests are exact.
- :class:`ListSink` — keeps what was written and what was committed, separately.
- :func:`run` — validate and run a job synchronously; :func:`wait_until` — poll a
  condition from an async test (sync conditions run in a thread).
- :class:`~pipeline_core.testing.trigger.MemoryTrigger` — an in-process EVENT trigger.
- :class:`SourceConformance` / :class:`SinkConformance` — subclass them in a connector's
  tests to check it honours the Source/Sink contract (resume, close, config errors, …).
- the ``pipeline_plugins`` pytest fixture (this package is a pytest plugin): a
  :class:`~pipeline_core.Plugins` with only the plugin modules a test passes.
"""

from pipeline_core.testing.conformance import SinkConformance, SourceConformance
from pipeline_core.testing.doubles import (
    ABORT,
    EOF,
    PAUSE,
    ListSink,
    ListSinkConfig,
    MemorySource,
    MemorySourceConfig,
    SourceAborted,
)
from pipeline_core.testing.helpers import assert_options_documented, run, wait_until

__all__ = [
    "ABORT",
    "EOF",
    "PAUSE",
    "ListSink",
    "ListSinkConfig",
    "MemorySource",
    "MemorySourceConfig",
    "SinkConformance",
    "SourceAborted",
    "SourceConformance",
    "assert_options_documented",
    "run",
    "wait_until",
]
