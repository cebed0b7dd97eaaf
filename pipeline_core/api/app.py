"""The REST API, ``/metrics``, ``/healthz`` and the dashboard, as one Starlette app.

Routes are declared once in :data:`ROUTES` (method, path, handler, scope, documentation);
the Starlette routing and the OpenAPI document (``/api/openapi.json``) are both built from
that table, so the document lists exactly what the server serves. Database calls run in
worker threads; executor actions run on the service's event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from pipeline_core import __version__
from pipeline_core.api.auth import Tokens
from pipeline_core.api.dashboard import dashboard_response
from pipeline_core.api.errors import (
    ApiError,
    error_response,
    handle_api_error,
    handle_pipeline_error,
)
from pipeline_core.api.events import EventHub
from pipeline_core.api.metrics import PipelineMetrics
from pipeline_core.api.schemas import (
    JSON_OPTIONS,
    SCHEMAS,
    checkpoint_doc,
    execution_doc,
    job_definition_input,
    job_doc,
    logs_doc,
    next_runs,
    page_doc,
    schedule_doc,
    schedule_input,
)
from pipeline_core.api.security import SECURITY_HEADERS, RequestGuard, SecurityPolicy
from pipeline_core.config.converter import FieldError, structure
from pipeline_core.config.documents import parse_document
from pipeline_core.errors import ConfigError, PipelineError
from pipeline_core.model.names import check_name
from pipeline_core.model.schedule import ScheduleConfig
from pipeline_core.model.steps import STEP_TYPES
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.lifecycle import ACTIVE
from pipeline_core.runtime.result import ExecutionStatus
from pipeline_core.store.listing import NEVER_RUN, Listing
from pipeline_core.store.serialize import dag_to_yaml

if TYPE_CHECKING:
    from pipeline_core.service import PipelineService

__all__ = ["ROUTES", "ApiRoute", "create_app", "openapi_document"]

log = logging.getLogger("pipeline_core.api")

Handler = Callable[["Api", Request], Awaitable[Any]]


@attrs.frozen
class ApiRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    scope: str  # "open", "read" or "admin"
    status: int = 200
    response: str | None = None  # schema name; "[Name]" for a list
    request: str | None = None
    errors: tuple[int, ...] = ()
    #: (name, JSON schema, description) — as strict as the handler checks it
    query: tuple[tuple[str, dict[str, Any], str], ...] = ()
    #: the media type of a response that is not JSON (a string in the document)
    media: str | None = None


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data, option=JSON_OPTIONS),
        status_code=status,
        media_type="application/json",
    )


async def _body(request: Request) -> Any:
    """The body, parsed with the same bounds as a job file (depth, alias expansion); its
    size was checked by the RequestGuard before the handler ran."""
    raw = await request.body()
    if not raw:
        return None
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    yaml_kind = kind in ("application/yaml", "application/x-yaml", "text/yaml")
    try:
        return parse_document(raw, kind="yaml" if yaml_kind else "json", origin="request body")
    except ConfigError as exc:
        raise ApiError(400, "invalid_body", str(exc)) from None


def _int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_query", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_query", f"{name} must be between {low} and {high}")
    return value


def _paging(request: Request, default: int, maximum: int) -> dict[str, int]:
    return {
        "limit": _int_query(request, "limit", default, 1, maximum),
        "offset": _int_query(request, "offset", 0, 0, MAX_OFFSET),
    }


def _choice(request: Request, name: str, allowed: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in allowed:
        raise ApiError(400, "invalid_query", f"{name} must be one of {', '.join(allowed)}")
    return value


def _paging_query(default: int, maximum: int) -> tuple[tuple[str, dict[str, Any], str], ...]:
    """The ``limit`` and ``offset`` parameters, as strict as :func:`_paging`."""
    return (
        (
            "limit",
            {"type": "integer", "minimum": 1, "maximum": maximum},
            f"at most this many (1-{maximum}, default {default})",
        ),
        (
            "offset",
            {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
            "skip this many (default 0); the answer's total says how many match",
        ),
    )


async def _object_body(request: Request, what: str) -> dict[str, Any]:
    data = await _body(request)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", f"expected {what} as a JSON object")
    return data


class Api:
    """The handlers, bound to one service."""

    def __init__(self, service: PipelineService, metrics: PipelineMetrics, tokens: Tokens) -> None:
        self.service = service
        self.store = service.store
        self.metrics = metrics
        self.tokens = tokens
        self.listing = Listing(service.store.engine)
        self.events = EventHub(
            service.store.engine,
            lambda r: execution_doc(r, throughput=self._throughput(r.execution_id)),
        )

    # --- helpers -----------------------------------------------------------------------

    def _job_doc(self, name: str, *, detail: bool = False, version: int | None = None) -> Any:
        d = self.store.registry.get(name, version)
        schedule = self.store.schedules.get(name)
        last = self.store.executions.query(job=name, limit=1)
        doc = job_doc(d, schedule, last[0] if last else None, detail=detail)
        if detail:
            doc["definition_yaml"] = dag_to_yaml(d.dag_definition)
            doc["next_runs"] = next_runs(schedule, NEXT_RUNS) if d.enabled else []
        return doc

    def _throughput(self, execution_id: str) -> float | None:
        h = self.service.executor.running.get(execution_id)
        return round(h.metrics.throughput, 1) if h is not None else None

    async def _execution(self, execution_id: str, *, trace: bool) -> Any:
        def read() -> Any:
            r = self.store.executions.get(execution_id)
            return execution_doc(
                r,
                throughput=self._throughput(execution_id),
                transitions=self.store.executions.transitions(execution_id),
                attempts=self.store.ownership.attempts(execution_id),
                trace=trace,
            )

        return await run_in_threadpool(read)

    # --- jobs ----------------------------------------------------------------------------

    async def list_jobs(self, request: Request) -> Response:
        paging = _paging(request, 50, 500)
        enabled = _choice(request, "enabled", ["true", "false"])
        search = request.query_params.get("q")
        page = await run_in_threadpool(
            functools.partial(
                self.listing.jobs,
                **paging,
                search=search.replace("\x00", "") if search else None,
                job_type=_choice(request, "type", JOB_TYPES),
                enabled=None if enabled is None else enabled == "true",
                last_status=_choice(request, "last_status", [*ExecutionStatus, NEVER_RUN]),
            )
        )
        return _json(page_doc(page, lambda j: job_doc(j, j.schedule, j.last)))

    async def create_job(self, request: Request) -> Response:
        data = await _object_body(request, "a job definition")
        # checked like a run would check it (the registry's validator), so a bad
        # definition is a 400 now, not a FAILED execution later
        d = await run_in_threadpool(
            functools.partial(
                self.store.registry.register,
                data,
                created_by="api",
                base_dir=self.service.executor.base_dir,
            )
        )
        return _json(await run_in_threadpool(self._job_doc, d.job_name, detail=True), 201)

    async def get_job(self, request: Request) -> Response:
        name = request.path_params["name"]
        return _json(await run_in_threadpool(self._job_doc, name, detail=True))

    async def update_job(self, request: Request) -> Response:
        name = request.path_params["name"]
        data = await _object_body(request, "a job definition")
        await run_in_threadpool(self.store.registry.get, name)  # 404 before 400
        await run_in_threadpool(
            functools.partial(
                self.store.registry.update,
                name,
                data,
                updated_by="api",
                base_dir=self.service.executor.base_dir,
            )
        )
        return _json(await run_in_threadpool(self._job_doc, name, detail=True))

    async def versions(self, request: Request) -> Response:
        page = await run_in_threadpool(
            functools.partial(
                self.listing.versions, request.path_params["name"], **_paging(request, 100, 1000)
            )
        )
        return _json(
            page_doc(
                page,
                lambda v: {
                    "version": v.version,
                    "create_time": v.create_time,
                    "created_by": v.created_by,
                },
            )
        )

    async def version(self, request: Request) -> Response:
        name, n = request.path_params["name"], request.path_params["version"]
        if not 1 <= n <= MAX_VERSION:
            raise ApiError(404, "job_not_found", f"job {name!r} has no version {n}")
        return _json(await run_in_threadpool(self._job_doc, name, detail=True, version=n))

    async def enable(self, request: Request) -> Response:
        name = request.path_params["name"]
        await run_in_threadpool(self.store.registry.enable, name)
        return _json(await run_in_threadpool(self._job_doc, name))

    async def disable(self, request: Request) -> Response:
        name = request.path_params["name"]
        await run_in_threadpool(self.store.registry.disable, name)
        return _json(await run_in_threadpool(self._job_doc, name))

    async def start(self, request: Request) -> Response:
        name = request.path_params["name"]
        eid = await run_in_threadpool(self.service.scheduler.trigger_job, name)
        return _json({"execution_id": eid, "job": name, "status": "SCHEDULED"}, 202)

    async def get_schedule(self, request: Request) -> Response:
        record = await run_in_threadpool(self.store.schedules.get, request.path_params["name"])
        if record is None:
            raise ApiError(404, "schedule_not_found", "this job has no schedule (manual only)")
        return _json(schedule_doc(record))

    async def put_schedule(self, request: Request) -> Response:
        name = request.path_params["name"]
        data = await _object_body(request, "a schedule")
        await run_in_threadpool(self.store.registry.get, name)
        config = structure(data, ScheduleConfig, job=name, component="schedule")
        record = await run_in_threadpool(self.service.scheduler.schedule, name, config)
        return _json(schedule_doc(record))

    async def delete_schedule(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not await run_in_threadpool(self.service.scheduler.unschedule, name):
            raise ApiError(404, "schedule_not_found", f"job {name!r} has no schedule")
        return Response(status_code=204)

    # --- executions ------------------------------------------------------------------------

    async def list_executions(self, request: Request) -> Response:
        job = request.query_params.get("job")
        paging = _paging(request, 50, 1000)
        status = _choice(request, "status", list(ExecutionStatus))
        if job is not None:  # an unknown job is a 404, as on every other job route
            await run_in_threadpool(self.store.registry.get, job)
        page = await run_in_threadpool(
            functools.partial(self.listing.executions, **paging, job=job, status=status)
        )
        return _json(
            page_doc(page, lambda r: execution_doc(r, throughput=self._throughput(r.execution_id)))
        )

    async def get_execution(self, request: Request) -> Response:
        # stack traces name code paths and values: only for admins
        admin = request.state.caller == "admin"
        return _json(await self._execution(request.path_params["id"], trace=admin))

    async def _act(self, request: Request, action: str) -> Response:
        eid = request.path_params["id"]
        record = await run_in_threadpool(self.store.executions.get, eid)
        if record.status not in ACTIVE:
            raise ApiError(
                409, "illegal_state", f"execution {eid!r} is {record.status}: cannot {action}"
            )
        ex = self.service.executor
        if action == "cancel":
            await ex.cancel(eid)
        elif action == "pause":
            await ex.pause(eid)
        elif action == "resume":
            await ex.resume(eid)
        elif action == "checkpoint":
            await ex.checkpoint(eid)
        else:
            data = await _object_body(request, 'a savepoint: {"name": …}')
            name = data.get("name")
            try:
                check_name(name, "name")
            except FieldError as exc:
                raise ApiError(400, "invalid_body", f"savepoint name: {exc.message}") from None
            await ex.checkpoint(eid, savepoint=name)
        current = await run_in_threadpool(self.store.executions.get, eid)
        return _json({"execution_id": eid, "action": action, "status": current.status.value}, 202)

    async def cancel(self, request: Request) -> Response:
        return await self._act(request, "cancel")

    async def pause(self, request: Request) -> Response:
        return await self._act(request, "pause")

    async def resume(self, request: Request) -> Response:
        return await self._act(request, "resume")

    async def checkpoint(self, request: Request) -> Response:
        return await self._act(request, "checkpoint")

    async def savepoint(self, request: Request) -> Response:
        return await self._act(request, "savepoint")

    async def checkpoints(self, request: Request) -> Response:
        page = await run_in_threadpool(
            functools.partial(
                self.listing.checkpoints, request.path_params["id"], **_paging(request, 100, 1000)
            )
        )
        return _json(page_doc(page, checkpoint_doc))

    async def throughput(self, request: Request) -> Response:
        eid = request.path_params["id"]
        await run_in_threadpool(self.store.executions.get, eid)  # 404 if there is none
        samples = list(self.events.samples.get(eid, ()))
        return _json(
            {
                "execution_id": eid,
                "interval": self.events.interval,
                "samples": [
                    {"time": t, "records_per_second": v, "records": n} for t, v, n in samples
                ],
            }
        )

    async def logs(self, request: Request) -> Response:
        after = request.query_params.get("after")
        tail = await run_in_threadpool(
            functools.partial(
                self.store.logs.tail,
                request.path_params["id"],
                after=None if after is None else _int_query(request, "after", 0, 0, MAX_SEQ),
                limit=_int_query(request, "limit", 500, 1, MAX_LOG_LINES),
            )
        )
        return _json(logs_doc(tail))

    # --- the rest --------------------------------------------------------------------------

    async def connectors(self, request: Request) -> Response:
        plugins = self.service.plugins
        out = []
        for kind, registry in (
            ("source", plugins.sources),
            ("sink", plugins.sinks),
            ("trigger", plugins.triggers),
            ("state_backend", plugins.state_backends),
        ):
            for reg in registry.registrations():
                out.append(
                    {
                        "kind": kind,
                        "type": reg.type_name,
                        "plugin": reg.plugin,
                        "distribution": reg.distribution,
                        "class": f"{reg.cls.__module__}.{reg.cls.__qualname__}",
                    }
                )
        return _json(out)

    async def live_events(self, request: Request) -> Response:
        if self.events.full:
            raise ApiError(503, "too_many_listeners", "too many live-update streams are open")
        hello = {"instance": self.service.instance, "interval": self.events.interval}
        return StreamingResponse(
            self.events.stream(hello),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},  # nginx: pass each event on at once
        )

    async def healthz(self, request: Request) -> Response:
        def ping() -> str:
            from sqlalchemy import text

            with self.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return "ok"

        try:
            database = await asyncio.wait_for(run_in_threadpool(ping), 5)
        except Exception as exc:
            return _json(
                {
                    "status": "unavailable",
                    "instance": self.service.instance,
                    "database": f"error: {type(exc).__name__}",
                    "running": len(self.service.executor.running),
                },
                503,
            )
        return _json(
            {
                "status": "ok",
                "instance": self.service.instance,
                "database": database,
                "running": len(self.service.executor.running),
            }
        )

    async def prometheus(self, request: Request) -> Response:
        body = await run_in_threadpool(self.metrics.exposition)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        return _json(openapi_document(self.tokens, self.service.plugins))

    async def dashboard(self, request: Request) -> Response:
        return dashboard_response()


MAX_VERSION = 2**31 - 1
MAX_OFFSET = 2**31 - 1
MAX_SEQ = 2**63 - 1
MAX_LOG_LINES = 5000
NEXT_RUNS = 5
JOB_TYPES = ["STREAMING", "BATCH_ROLLER", "SQL_TASK"]
_NAME = "/api/jobs/{name}"
_EXEC = "/api/executions/{id}"
_E404 = (404,)

ROUTES: list[ApiRoute] = [
    ApiRoute(
        "GET",
        "/api/jobs",
        Api.list_jobs,
        "Jobs by name, a page at a time (no definitions: see the job's own route)",
        "read",
        response="JobPage",
        errors=(400,),
        query=(
            *_paging_query(50, 500),
            ("q", {"type": "string"}, "a part of the name or description (any case)"),
            ("type", {"type": "string", "enum": JOB_TYPES}, "only this job type"),
            ("enabled", {"type": "string", "enum": ["true", "false"]}, "only enabled or disabled"),
            (
                "last_status",
                {"type": "string", "enum": [*ExecutionStatus, NEVER_RUN]},
                "only jobs whose newest execution has this status (NEVER: never ran)",
            ),
        ),
    ),
    ApiRoute(
        "POST",
        "/api/jobs",
        Api.create_job,
        "Register a job (version 1)",
        "admin",
        201,
        "JobDetail",
        "JobDefinitionInput",
        (400, 409),
    ),
    ApiRoute(
        "GET",
        _NAME,
        Api.get_job,
        "A job's latest version",
        "read",
        response="JobDetail",
        errors=_E404,
    ),
    ApiRoute(
        "PUT",
        _NAME,
        Api.update_job,
        "Add a version of a job",
        "admin",
        response="JobDetail",
        request="JobDefinitionInput",
        errors=(400, 404, 409),
    ),
    ApiRoute(
        "GET",
        f"{_NAME}/versions",
        Api.versions,
        "A job's versions, newest first",
        "read",
        response="VersionPage",
        errors=(400, 404),
        query=_paging_query(100, 1000),
    ),
    ApiRoute(
        "GET",
        f"{_NAME}/versions/{{version:int}}",
        Api.version,
        "One version of a job",
        "read",
        response="JobDetail",
        errors=_E404,
    ),
    ApiRoute(
        "POST", f"{_NAME}/enable", Api.enable, "Enable a job", "admin", response="Job", errors=_E404
    ),
    ApiRoute(
        "POST",
        f"{_NAME}/disable",
        Api.disable,
        "Disable a job (it never runs)",
        "admin",
        response="Job",
        errors=_E404,
    ),
    ApiRoute(
        "POST",
        f"{_NAME}/start",
        Api.start,
        "Start a job now; returns the execution id",
        "admin",
        202,
        "Started",
        errors=(404, 409),
    ),
    ApiRoute(
        "GET",
        f"{_NAME}/schedule",
        Api.get_schedule,
        "A job's schedule",
        "read",
        response="Schedule",
        errors=_E404,
    ),
    ApiRoute(
        "PUT",
        f"{_NAME}/schedule",
        Api.put_schedule,
        "Set a job's schedule",
        "admin",
        response="Schedule",
        request="ScheduleInput",
        errors=(400, 404, 409),
    ),
    ApiRoute(
        "DELETE",
        f"{_NAME}/schedule",
        Api.delete_schedule,
        "Remove a job's schedule",
        "admin",
        204,
        errors=_E404,
    ),
    ApiRoute(
        "GET",
        "/api/executions",
        Api.list_executions,
        "Executions, newest first",
        "read",
        response="ExecutionPage",
        errors=(400, 404),
        query=(
            ("job", {"type": "string"}, "only this job (404 if there is no such job)"),
            ("status", {"type": "string", "enum": list(ExecutionStatus)}, "only this status"),
            *_paging_query(50, 1000),
        ),
    ),
    ApiRoute(
        "GET",
        _EXEC,
        Api.get_execution,
        "An execution with its transitions",
        "read",
        response="ExecutionDetail",
        errors=_E404,
    ),
    ApiRoute(
        "POST",
        f"{_EXEC}/cancel",
        Api.cancel,
        "Cancel an execution",
        "admin",
        202,
        "Accepted",
        errors=(404, 409),
    ),
    ApiRoute(
        "POST",
        f"{_EXEC}/pause",
        Api.pause,
        "Pause (the source stops pulling)",
        "admin",
        202,
        "Accepted",
        errors=(404, 409),
    ),
    ApiRoute(
        "POST",
        f"{_EXEC}/resume",
        Api.resume,
        "Resume a paused execution",
        "admin",
        202,
        "Accepted",
        errors=(404, 409),
    ),
    ApiRoute(
        "POST",
        f"{_EXEC}/checkpoint",
        Api.checkpoint,
        "Take a checkpoint now",
        "admin",
        202,
        "Accepted",
        errors=(404, 409),
    ),
    ApiRoute(
        "POST",
        f"{_EXEC}/savepoint",
        Api.savepoint,
        "Take a named savepoint",
        "admin",
        202,
        "Accepted",
        "SavepointInput",
        (400, 404, 409),
    ),
    ApiRoute(
        "GET",
        f"{_EXEC}/checkpoints",
        Api.checkpoints,
        "An execution's checkpoints and savepoints, oldest first",
        "read",
        response="CheckpointPage",
        errors=(400, 404),
        query=_paging_query(100, 1000),
    ),
    ApiRoute(
        "GET",
        f"{_EXEC}/throughput",
        Api.throughput,
        "Records/s of a running execution, one sample a second while live updates are read",
        "read",
        response="Throughput",
        errors=_E404,
    ),
    ApiRoute(
        "GET",
        f"{_EXEC}/logs",
        Api.logs,
        "An execution's newest log lines (its kept tail), oldest first; with after, "
        "the lines after that seq",
        "read",
        response="ExecutionLogs",
        errors=(400, 404),
        query=(
            (
                "after",
                {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                "only lines with a greater seq (the last_seq of an earlier answer): the "
                "oldest of them first, up to limit",
            ),
            (
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LOG_LINES},
                f"at most this many lines (1-{MAX_LOG_LINES}, default 500)",
            ),
        ),
    ),
    ApiRoute(
        "GET",
        "/api/connectors",
        Api.connectors,
        "Installed sources, sinks, triggers and state backends",
        "read",
        response="[Connector]",
    ),
    ApiRoute(
        "GET",
        "/api/events",
        Api.live_events,
        "Live updates (Server-Sent Events): execution and job changes, as they happen",
        "read",
        errors=(503,),
        media="text/event-stream",
    ),
    ApiRoute(
        "GET",
        "/healthz",
        Api.healthz,
        "Liveness and readiness",
        "open",
        response="Health",
        errors=(503,),
    ),
    ApiRoute("GET", "/metrics", Api.prometheus, "Prometheus metrics", "metrics"),
    ApiRoute("GET", "/api/openapi.json", Api.openapi, "This document", "open"),
    ApiRoute("GET", "/", Api.dashboard, "The web dashboard", "open"),
]


def _schema(name: str) -> dict[str, Any]:
    if name.startswith("["):
        return {"type": "array", "items": {"$ref": f"#/components/schemas/{name[1:-1]}"}}
    return {"$ref": f"#/components/schemas/{name}"}


def openapi_document(
    tokens: Tokens | None = None, plugins: Plugins | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`ROUTES`; with ``tokens``, as that configuration
    enforces them (routes that need no token declare no security); with ``plugins``, the
    installed connectors' type names are the only ones a definition may use."""
    tokens = tokens if tokens is not None else Tokens(frozenset({"-"}))
    schemas = {
        **SCHEMAS,
        "ScheduleInput": schedule_input(),
        "JobDefinitionInput": job_definition_input(
            plugins.sources.names() if plugins else [],
            plugins.sinks.names() if plugins else [],
            sorted(STEP_TYPES),
        ),
    }
    if plugins is None:  # any type name
        for role in ("source", "sink"):
            schemas["JobDefinitionInput"]["properties"][role]["properties"]["type"] = {
                "type": "string"
            }
    paths: dict[str, Any] = {}
    error = {"application/json": {"schema": _schema("Error")}}
    for r in ROUTES:
        if r.path == "/":
            continue
        path = r.path.replace(":int", "")
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": r.handler.__name__,
            "responses": {},
        }
        params = [
            {
                "name": p.strip("{}").split(":")[0],
                "in": "path",
                "required": True,
                "schema": (
                    {"type": "integer", "minimum": 1, "maximum": MAX_VERSION}
                    if ":int" in p
                    else {"type": "string"}
                ),
            }
            for p in r.path.split("/")
            if p.startswith("{")
        ]
        params += [
            {"name": n, "in": "query", "required": False, "schema": t, "description": d}
            for n, t, d in r.query
        ]
        if params:
            op["parameters"] = params
        if r.request:
            content: dict[str, Any] = {"application/json": {"schema": _schema(r.request)}}
            if r.request == "JobDefinitionInput":
                content["application/yaml"] = {"schema": _schema(r.request)}
            op["requestBody"] = {"required": True, "content": content}
        ok: dict[str, Any] = {"description": "OK"}
        if r.response:
            ok["content"] = {"application/json": {"schema": _schema(r.response)}}
        elif r.media:
            ok["content"] = {r.media: {"schema": {"type": "string"}}}
        elif r.path == "/metrics":
            ok["content"] = {"text/plain": {"schema": {"type": "string"}}}
        elif r.path == "/api/openapi.json":
            ok["content"] = {"application/json": {"schema": {"type": "object"}}}
        op["responses"][str(r.status)] = ok
        for status in r.errors:
            op["responses"][str(status)] = {"description": "error", "content": error}
        needs_token = r.scope == "admin" or (
            r.scope in ("read", "metrics")
            and tokens.reads_need_token()
            and not (r.scope == "metrics" and tokens.metrics_public)
        )
        if needs_token and not tokens.no_auth:
            op["security"] = [{"bearer": []}]
            op["responses"]["401"] = {"description": "no or unknown token", "content": error}
            if r.scope == "admin":
                op["responses"]["403"] = {"description": "needs an admin token", "content": error}
        if r.method not in ("GET", "HEAD"):
            op["responses"]["403"] = {
                "description": "needs an admin token, or a cross-site request",
                "content": error,
            }
            op["responses"]["413"] = {"description": "body too large", "content": error}
            op["responses"]["415"] = {"description": "not a JSON body", "content": error}
        if r.request or r.query:
            op["responses"].setdefault("400", {"description": "bad request", "content": error})
        paths.setdefault(path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pipeline Framework", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return error_response(404, "not_found", "no such route")


async def _not_allowed(_request: Request, exc: Exception) -> Response:
    response = error_response(405, "method_not_allowed", "method not allowed on this route")
    allow = getattr(exc, "headers", None) or {}
    if "Allow" in allow:
        response.headers["Allow"] = allow["Allow"]
    return response


async def _internal_error(_request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback here, answered in the API's error shape (and,
    unlike Starlette's plain 500 page, with the security headers: see below)."""
    log.error("unhandled error in an API handler", exc_info=exc)
    response = error_response(500, "internal_error", "internal error (see the service log)")
    for key, value in SECURITY_HEADERS:
        response.headers.setdefault(key.decode(), value.decode())
    return response


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, "http_error", str(exc.detail))
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def create_app(
    service: PipelineService,
    *,
    tokens: Tokens | None = None,
    metrics: PipelineMetrics | None = None,
    policy: SecurityPolicy | None = None,
) -> Starlette:
    """The app. ``tokens`` (default: from the environment; with none configured the API
    is read-only) say who may do what — each route's scope comes from :data:`ROUTES`;
    ``policy`` (default: from the environment) which Host names, origins and body sizes
    are accepted."""
    tokens = tokens if tokens is not None else Tokens.from_env()
    policy = policy if policy is not None else SecurityPolicy.from_env()
    metrics = metrics or PipelineMetrics()
    api = Api(service, metrics, tokens)

    def bind(by_method: dict[str, ApiRoute]) -> Callable[[Request], Awaitable[Any]]:
        async def endpoint(request: Request) -> Any:
            method = "GET" if request.method == "HEAD" else request.method
            route = by_method[method]
            caller, refusal = tokens.check(route.scope, request.headers.get("authorization"))
            if refusal is not None:
                return error_response(refusal.status, refusal.code, refusal.message)
            request.state.caller = caller
            return await route.handler(api, request)

        return endpoint

    # one Starlette route per path, so that a 405 lists every method of the path in Allow
    paths: dict[str, dict[str, ApiRoute]] = {}
    for r in ROUTES:
        paths.setdefault(r.path, {})[r.method] = r
    routes = [Route(path, bind(by), methods=list(by)) for path, by in paths.items()]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestGuard, policy=policy)],
        exception_handlers={
            PipelineError: handle_pipeline_error,
            ApiError: handle_api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
            404: _not_found,
            405: _not_allowed,
        },
    )
    app.state.api = api
    return app
