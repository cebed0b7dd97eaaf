# Pipeline Framework runner image: `pipeline-run serve` with the connectors you choose.
#
#   docker build -t pipeline .                                   # every connector
#   docker build --build-arg CONNECTORS="file jdbc" -t pipeline .   # only these
#
# Slim Python base, a virtual environment built in a separate stage, non-root at run time.
ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS build
ARG CONNECTORS="file jdbc http rabbitmq kafka"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline_core ./pipeline_core
COPY connectors ./connectors
RUN python -m venv /opt/pipeline \
 && /opt/pipeline/bin/pip install ".[postgres]" \
 && for c in ${CONNECTORS}; do /opt/pipeline/bin/pip install "./connectors/$c"; done

FROM python:${PYTHON}-slim
RUN useradd --system --create-home --uid 10001 pipeline \
 && mkdir -p /jobs /data && chown pipeline /data
COPY --from=build /opt/pipeline /opt/pipeline
ENV PATH=/opt/pipeline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIPELINE_CHECKPOINT_URL=/data/checkpoints
USER pipeline
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
# PIPELINE_DATABASE_URL (PostgreSQL for several replicas) and the API tokens come from the
# environment; job files from /jobs (a ConfigMap).
CMD ["pipeline-run", "serve", "--host", "0.0.0.0", "--port", "8080", "--jobs", "/jobs"]
