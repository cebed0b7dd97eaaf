"""The REST API, Prometheus metrics and the web dashboard of ``pipeline-run serve``."""

from pipeline_core.api.app import ROUTES, create_app, openapi_document
from pipeline_core.api.auth import Tokens
from pipeline_core.api.metrics import PipelineMetrics

__all__ = ["ROUTES", "PipelineMetrics", "Tokens", "create_app", "openapi_document"]
