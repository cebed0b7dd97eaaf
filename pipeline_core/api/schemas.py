"""JSON Schemas of the API's bodies (OpenAPI 3.1 components), and the documents built
from store records. The response builders and the schemas live side by side so that a
field added to one is seen missing from the other in review — and the schemathesis test
checks every response against these schemas."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.model.cron import time_zones
from pipeline_core.model.names import NAME_PATTERN
from pipeline_core.store.executions import AttemptRecord, ExecutionRecord, Transition
from pipeline_core.store.listing import JobSummary, LastExecution, Page
from pipeline_core.store.logs import LogTail
from pipeline_core.store.registry import JobDefinition
from pipeline_core.store.schedules import ScheduleRecord

__all__ = [
    "JSON_OPTIONS",
    "SCHEMAS",
    "checkpoint_doc",
    "execution_doc",
    "job_definition_input",
    "job_doc",
    "logs_doc",
    "next_runs",
    "page_doc",
    "schedule_doc",
    "schedule_input",
]

_STR = {"type": "string"}
_STR_N = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_INT_N = {"type": ["integer", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_TIME_N = {"type": ["string", "null"], "format": "date-time"}
_BOOL = {"type": "boolean"}
_OBJ = {"type": "object"}
#: a job (or savepoint) name: model/names.NAME_PATTERN
NAME = {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$"}
_STATUS = {
    "type": "string",
    "enum": [
        "REGISTERED",
        "SCHEDULED",
        "INITIALIZING",
        "RUNNING",
        "CHECKPOINTING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
    ],
}


def _object(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": _STR, "message": _STR, "details": {}}),
    "Schedule": _object(
        {
            "type": {"type": "string", "enum": ["CRON", "MANUAL", "EVENT", "DEPENDENCY"]},
            "cron": _STR_N,
            "timezone": _STR,
            "event_trigger": _STR_N,
            "event_topic": _STR_N,
            "event_config": _OBJ,
            "dependencies": {"type": "array", "items": _STR},
            "enabled": _BOOL,
            "next_trigger_time": _TIME_N,
            "last_trigger_time": _TIME_N,
        }
    ),
    "ExecutionSummary": {
        "oneOf": [
            {"type": "null"},
            _object({"execution_id": _STR, "status": _STATUS, "start_time": _TIME}),
        ]
    },
    "Job": _object(
        {
            "name": _STR,
            "job_type": _STR,
            "version": _INT,
            "latest_version": _INT,
            "description": _STR_N,
            "enabled": _BOOL,
            "create_time": _TIME,
            "update_time": _TIME,
            "created_by": _STR_N,
            "updated_by": _STR_N,
            "schedule": {"oneOf": [{"type": "null"}, _ref("Schedule")]},
            "last_execution": _ref("ExecutionSummary"),
        }
    ),
    "JobDetail": {
        "allOf": [
            _ref("Job"),
            _object(
                {
                    "dag_definition": _OBJ,
                    "config_overrides": _OBJ,
                    "definition_yaml": _STR,
                    "next_runs": {"type": "array", "items": _TIME},
                }
            ),
        ]
    },
    "Version": _object({"version": _INT, "create_time": _TIME, "created_by": _STR_N}),
    "Transition": _object(
        {"from_status": _STR_N, "to_status": _STR, "time": _TIME, "message": _STR_N}
    ),
    "Attempt": _object(
        {
            "attempt": _INT,
            "run_id": _STR,
            "owner_instance": _STR_N,
            "start_time": _TIME,
            "end_time": _TIME_N,
            "status": _STR,
            "processed_records": _INT,
            "failed_records": _INT,
            "end_reason": _STR_N,
        }
    ),
    "Execution": _object(
        {
            "execution_id": _STR,
            "job_name": _STR,
            "job_version": _INT_N,
            "status": _STATUS,
            "paused": _BOOL,
            "start_time": _TIME,
            "end_time": _TIME_N,
            "duration_ms": _INT_N,
            "processed_records": _INT,
            "failed_records": _INT,
            "throughput": {"type": ["number", "null"]},
            "error_message": _STR_N,
            "retry_count": _INT,
            "triggered_by": _STR_N,
            "scheduled_time": _TIME_N,
            "owner_instance": _STR_N,
            "heartbeat_time": _TIME_N,
            "attempt": _INT,
            "superseded_by": _STR_N,
        }
    ),
    "ExecutionDetail": {
        "allOf": [
            _ref("Execution"),
            _object(
                {
                    "error_stack_trace": _STR_N,
                    "transitions": {"type": "array", "items": _ref("Transition")},
                    "attempts": {"type": "array", "items": _ref("Attempt")},
                }
            ),
        ]
    },
    "Checkpoint": _object(
        {
            "execution_id": _STR,
            "checkpoint_id": _INT,
            "checkpoint_type": _STR,
            "status": _STR,
            "is_savepoint": _BOOL,
            "savepoint_name": _STR_N,
            "storage_path": _STR_N,
            "storage_size_bytes": _INT_N,
            "create_time": _TIME,
            "complete_time": _TIME_N,
            "state_data": _OBJ,
        }
    ),
    "Throughput": _object(
        {
            "execution_id": _STR,
            "interval": {"type": "number"},
            "samples": {
                "type": "array",
                "items": _object(
                    {"time": _TIME, "records_per_second": {"type": "number"}, "records": _INT}
                ),
            },
        }
    ),
    "ExecutionLogs": _object(
        {
            "execution_id": _STR,
            "last_seq": {"type": "integer", "minimum": 0},
            "lines": {
                "type": "array",
                "items": _object(
                    {
                        "seq": {"type": "integer", "minimum": 1},
                        "attempt": _INT,
                        "time": _TIME,
                        "level": _STR,
                        "logger": _STR,
                        "message": _STR,
                    }
                ),
            },
        }
    ),
    "Accepted": _object({"execution_id": _STR, "action": _STR, "status": _STATUS}),
    "Started": _object({"execution_id": _STR, "job": _STR, "status": _STATUS}),
    "SavepointInput": _object({"name": NAME}),
    "Connector": _object(
        {"kind": _STR, "type": _STR, "plugin": _STR, "distribution": _STR, "class": _STR}
    ),
    "Health": _object({"status": _STR, "instance": _STR, "database": _STR, "running": _INT}),
}

#: the paged lists: ``{"items": [...], "total": n, "limit": l, "offset": o}``
PAGES = {"JobPage": "Job", "ExecutionPage": "Execution", "VersionPage": "Version"}
PAGES["CheckpointPage"] = "Checkpoint"
for _page, _item in PAGES.items():
    SCHEMAS[_page] = _object(
        {
            "items": {"type": "array", "items": _ref(_item)},
            "total": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1},
            "offset": {"type": "integer", "minimum": 0},
        }
    )


def page_doc(page: Page[Any], doc: Any) -> dict[str, Any]:
    """A page of a list, each item turned into its document by ``doc``."""
    return {
        "items": [doc(i) for i in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


def schedule_input() -> dict[str, Any]:
    """What ``PUT …/schedule`` (and a definition's ``schedule``) accepts: one variant per
    type, each naming only its own fields (the others may only be empty), as strictly as
    ScheduleConfig checks them."""
    empty: dict[str, Any] = {
        "cron": {"type": "null"},
        "event_trigger": {"type": "null"},
        "event_topic": {"type": "null"},
        "event_config": {"type": "object", "maxProperties": 0},
        "dependencies": {"type": "array", "maxItems": 0},
    }
    common = {"timezone": {"type": "string", "enum": sorted(time_zones())}, "enabled": _BOOL}
    text = {"type": "string", "minLength": 1}

    def variant(kind: str, fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
        kind_schema = {"type": "string", "enum": [kind]}
        return {
            "type": "object",
            "properties": {"type": kind_schema, **common, **empty, **fields},
            "required": ["type", *required] if kind != "MANUAL" else required,
            "additionalProperties": False,
        }

    return {
        "oneOf": [
            variant("MANUAL", {}, []),
            variant("CRON", {"cron": text}, ["cron"]),
            variant(
                "EVENT",
                {"event_trigger": text, "event_topic": text, "event_config": _OBJ},
                ["event_trigger", "event_topic"],
            ),
            variant(
                "DEPENDENCY",
                {"dependencies": {"type": "array", "items": NAME, "minItems": 1}},
                ["dependencies"],
            ),
        ]
    }


def job_definition_input(sources: list[str], sinks: list[str], steps: list[str]) -> dict[str, Any]:
    """What ``POST /api/jobs`` accepts, with the installed connectors' type names. The
    schema gives the shape; what each connector accepts in its ``config`` (and whether a
    function imports) is checked by the server: ``400 invalid_definition``."""

    def component(types: list[str]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": types}, "config": _OBJ},
            "required": ["type"],
            "additionalProperties": False,
        }

    return {
        "description": "A job definition (the dag_definition document): JSON, or YAML with "
        "Content-Type application/yaml. Secrets as ${env:NAME} references.",
        "type": "object",
        "properties": {
            "name": NAME,
            "type": {"type": "string", "enum": ["STREAMING", "BATCH_ROLLER", "SQL_TASK"]},
            "description": _STR_N,
            "source": component(sources),
            "transform": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"type": {"type": "string", "enum": steps}, "name": NAME},
                    "required": ["type"],
                },
            },
            "sink": component(sinks),
            "config": _OBJ,
            "schedule": {"oneOf": [{"type": "null"}, _ref("ScheduleInput")]},
        },
        "required": ["name", "source", "sink"],
        "additionalProperties": False,
    }


#: the JSON options of every document: times are stored as naive UTC and written by orjson
#: as ``2026-12-03T18:28:28.692899+00:00`` (ten times faster than isoformat() per value)
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC


def _time(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as it goes into a document (see :data:`JSON_OPTIONS`)."""
    return value


def schedule_doc(record: ScheduleRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    c = record.config
    return {
        "type": c.type.value,
        "cron": c.cron,
        "timezone": c.timezone,
        "event_trigger": c.event_trigger,
        "event_topic": c.event_topic,
        "event_config": c.event_config,
        "dependencies": list(c.dependencies),
        "enabled": c.enabled,
        "next_trigger_time": _time(record.next_trigger_time),
        "last_trigger_time": _time(record.last_trigger_time),
    }


def next_runs(record: ScheduleRecord | None, count: int) -> list[dt.datetime]:
    """The next ``count`` fire times of a cron schedule (none for other types)."""
    if record is None or not record.config.enabled or record.next_trigger_time is None:
        return []
    if record.config.cron is None:
        return []
    cron = record.config.cron_schedule()
    times = [record.next_trigger_time]
    while len(times) < count:
        times.append(cron.next_after(times[-1]))
    return times


def job_doc(
    d: JobDefinition | JobSummary,
    schedule: ScheduleRecord | None,
    last: ExecutionRecord | LastExecution | None,
    *,
    detail: bool = False,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": d.job_name,
        "job_type": d.job_type,
        "version": d.version,
        "latest_version": d.latest_version,
        "description": d.description,
        "enabled": d.enabled,
        "create_time": _time(d.create_time),
        "update_time": _time(d.update_time),
        "created_by": d.created_by,
        "updated_by": d.updated_by,
        "schedule": schedule_doc(schedule),
        "last_execution": None
        if last is None
        else {
            "execution_id": last.execution_id,
            "status": last.status.value,
            "start_time": _time(last.start_time),
        },
    }
    if detail:
        assert isinstance(d, JobDefinition)
        # as stored: secrets stay ${env:…} references, never resolved values
        doc["dag_definition"] = d.dag_definition
        doc["config_overrides"] = d.config
    return doc


def execution_doc(
    r: ExecutionRecord,
    *,
    throughput: float | None = None,
    transitions: list[Transition] | None = None,
    attempts: list[AttemptRecord] | None = None,
    trace: bool = False,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "execution_id": r.execution_id,
        "job_name": r.job_name,
        "job_version": r.job_version,
        "status": r.status.value,
        "paused": r.paused,
        "start_time": _time(r.start_time),
        "end_time": _time(r.end_time),
        "duration_ms": r.duration_ms,
        "processed_records": r.processed_records,
        "failed_records": r.failed_records,
        "throughput": throughput,
        "error_message": r.error_message,
        "retry_count": r.retry_count,
        "triggered_by": r.triggered_by,
        "scheduled_time": _time(r.scheduled_time),
        "owner_instance": r.owner_instance,
        "heartbeat_time": _time(r.heartbeat_time),
        "attempt": r.attempt,
        "superseded_by": r.superseded_by,
    }
    if attempts is not None:
        doc["attempts"] = [
            {
                "attempt": a.attempt,
                "run_id": a.run_id,
                "owner_instance": a.owner_instance,
                "start_time": _time(a.start_time),
                "end_time": _time(a.end_time),
                "status": a.status,
                "processed_records": a.processed_records,
                "failed_records": a.failed_records,
                "end_reason": a.end_reason,
            }
            for a in attempts
        ]
    if transitions is not None:
        doc["error_stack_trace"] = r.error_stack_trace if trace else None
        doc["transitions"] = [
            {
                "from_status": t.from_status,
                "to_status": t.to_status,
                "time": _time(t.time),
                "message": t.message,
            }
            for t in transitions
        ]
    return doc


def logs_doc(tail: LogTail) -> dict[str, Any]:
    return {
        "execution_id": tail.execution_id,
        "last_seq": tail.last_seq,
        "lines": [
            {
                "seq": r.seq,
                "attempt": r.attempt,
                "time": _time(r.time),
                "level": r.level,
                "logger": r.logger,
                "message": r.message,
            }
            for r in tail.lines
        ],
    }


def checkpoint_doc(c: CheckpointInfo) -> dict[str, Any]:
    return {
        "execution_id": c.execution_id,
        "checkpoint_id": c.checkpoint_id,
        "checkpoint_type": c.checkpoint_type,
        "status": c.status,
        "is_savepoint": c.is_savepoint,
        "savepoint_name": c.savepoint_name,
        "storage_path": c.storage_path,
        "storage_size_bytes": c.storage_size_bytes,
        "create_time": _time(c.create_time),
        "complete_time": _time(c.complete_time),
        "state_data": c.state_data,
    }
