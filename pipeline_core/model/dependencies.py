"""The dependency rule of DEPENDENCY schedules, on plain data (no database).

A job may only wait for jobs that exist, and never — directly or through others — for
itself: a cycle would trigger itself forever. The registry applies the rule inside its
storing transaction (``store/schedules.check_dependencies``, against what is
registered), and before it, with the other checks, so that one answer lists every
problem; ``validate`` applies it against what is registered plus the other files given,
and ``jobs import`` against what is registered plus the whole batch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from pipeline_core.errors import DependencyConflict, Problem, did_you_mean
from pipeline_core.model.schedule import ScheduleConfig, ScheduleType

if TYPE_CHECKING:
    from pipeline_core.model.job import PipelineJob

__all__ = [
    "UNKNOWN_DEPENDENCY",
    "check_dependencies",
    "cycle_through",
    "dependency_order",
    "upstream_jobs",
]

UNKNOWN_DEPENDENCY = "depends on a job that is not registered"


def upstream_jobs(job: PipelineJob) -> list[str]:
    """The jobs ``job`` waits for (its DEPENDENCY schedule's), else none."""
    schedule = job.schedule
    if schedule is None or schedule.type is not ScheduleType.DEPENDENCY:
        return []
    return list(schedule.dependencies)


def cycle_through(start: str, graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A path start → … → start along ``graph``'s edges (job → the jobs it waits for),
    or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, []):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def check_dependencies(
    job: str,
    schedule: ScheduleConfig | None,
    graph: Mapping[str, Sequence[str]],
    known: Collection[str],
) -> None:
    """DependencyConflict naming the unknown upstream jobs and the cycle, if ``job``
    with ``schedule`` waits for a job not in ``known`` or closes a cycle in ``graph``
    (the other jobs' dependencies; ``job``'s own entry is replaced by ``schedule``)."""
    if schedule is None or schedule.type is not ScheduleType.DEPENDENCY:
        return
    problems = []
    missing = [d for d in schedule.dependencies if d not in known and d != job]
    if missing:
        others = [k for k in known if k != job]

        def named(d: str) -> str:  # with the registered names close to it
            hint = did_you_mean(d, others)
            return f"{d} ({hint.removeprefix(': ')})" if hint else d

        problems.append(f"{UNKNOWN_DEPENDENCY}: {', '.join(map(named, missing))}")
    cycle = cycle_through(job, {**graph, job: list(schedule.dependencies)})
    if cycle:
        problems.append(f"dependency cycle: {' → '.join(cycle)}")
    if problems:
        raise DependencyConflict(
            [Problem(p, job=job, component="schedule", field="dependencies") for p in problems]
        )


def dependency_order(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """The jobs of ``graph``, each after those of its dependencies that are in it (a job
    on a cycle comes wherever the cycle is broken)."""
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str, path: set[str]) -> None:
        if name in done or name in path or name not in graph:
            return
        for upstream in graph[name]:
            visit(upstream, path | {name})
        done.add(name)
        order.append(name)

    for name in graph:
        visit(name, set())
    return order
