"""JSON errors with one stable shape: ``{"error": code, "message": …, "details": …}``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from pipeline_core.errors import (
    ConfigError,
    DependencyConflict,
    ExecutionNotFound,
    JobAlreadyExists,
    JobAlreadyRunning,
    JobDisabled,
    JobNotFound,
    LifecycleError,
    PipelineError,
)

__all__ = ["ApiError", "error_response", "handle_api_error", "handle_pipeline_error"]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    body = {"error": code, "message": message, "details": details}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


#: (exception class, HTTP status, error code), most specific first
_MAPPING: list[tuple[type[PipelineError], int, str]] = [
    (JobNotFound, 404, "job_not_found"),
    (ExecutionNotFound, 404, "execution_not_found"),
    (JobAlreadyExists, 409, "job_exists"),
    (JobAlreadyRunning, 409, "job_running"),
    (JobDisabled, 409, "job_disabled"),
    (LifecycleError, 409, "illegal_state"),
    (DependencyConflict, 409, "dependency_conflict"),
    (ConfigError, 400, "invalid_definition"),
]


async def handle_pipeline_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PipelineError)
    for cls, status, code in _MAPPING:
        if isinstance(exc, cls):
            details = None
            if isinstance(exc, ConfigError):
                details = [
                    {"job": p.job, "component": p.component, "field": p.field, "message": p.message}
                    for p in exc.problems
                ]
            return error_response(status, code, str(exc), details)
    return error_response(500, "internal_error", str(exc))


async def handle_api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details)
