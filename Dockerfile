# syntax=docker/dockerfile:1
# cds-service image: docs/deployment.md.
#   docker build -t cds-service:0.1.0 .
#   docker run --rm -p 8080:8080 -e CDS_PUBLIC_URL=http://127.0.0.1:8080 \
#     -e CDS_TRUST_FILE=/app/trust/cds-hooks-sandbox.yaml cds-service:0.1.0
# The tag follows `version` in pyproject.toml (deploy/kubernetes/deployment.yaml names the same tag).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: wheels for the project and every pinned dependency ------------------------------------
FROM ${PYTHON_IMAGE} AS build
# durable-rules ships no wheel: it compiles from source, so this stage needs a C/C++ toolchain. The
# stage is thrown away, so the toolchain's Debian versions are not pinned (they move with bookworm's
# point releases, and an old pin would stop building).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements/ ./requirements/
# The locked build tools first (pip, setuptools, wheel), so that the builds below run without build
# isolation, which would fetch unlocked ones.
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/build.txt
# The runtime set only (no test packages), at the versions CI tests with: every download checked
# against the lock's hashes, durable-rules compiled from its hashed sdist.
RUN pip wheel --no-cache-dir --wheel-dir /wheels --require-hashes --no-deps --no-build-isolation \
    -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
RUN pip wheel --no-cache-dir --wheel-dir /wheels --no-deps --no-build-isolation .

# --- runtime: no compiler, installs the wheels offline ---------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A numeric user, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 cds \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin cds
# --no-index: only the wheels made above go in, one version of each (the lock's), so nothing is
# resolved anew; a dependency missing from the lock fails here, and `pip check` confirms the set. (Not
# --require-hashes: the wheels compiled above have no hash in the lock, only their sdists.)
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels cds-service \
    && pip check
WORKDIR /app
# Rules and their test cases with the synthetic patients they name (`../fhir_fixtures/...`): a hot
# reload runs the cases before it serves a change, and `cds-service rules test` works in the image.
# And the example trust file. Owned by root: the service reads them, never writes them.
COPY rules/ /app/rules/
COPY fhir_fixtures/ /app/fhir_fixtures/
COPY docs/trust/ /app/trust/
# Only for a single container on SQLite (mount a volume here); several replicas use PostgreSQL.
RUN install -d -o 10001 -g 10001 -m 0700 /var/lib/cds-service
# matplotlib writes its font cache under MPLCONFIGDIR: /tmp, the one writable place when the root
# filesystem is read-only (an emptyDir in Kubernetes). Without it, it would warn and pick a new temp
# dir in every worker process.
ENV CDS_HOST=0.0.0.0 \
    CDS_PORT=8080 \
    CDS_RULES_DIR=/app/rules \
    CDS_DATABASE_URL=sqlite:////var/lib/cds-service/cds-service.db \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
EXPOSE 8080
# No curl in a slim image; urlopen raises (exit 1) on anything but 2xx, and /healthz needs no token.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CDS_PORT', '8080'), timeout=8)"]
# Exec form: cds-service is PID 1 and receives SIGTERM itself. uvicorn handles it (graceful
# shutdown; with CDS_WORKERS > 1 its supervisor stops and reaps the workers). Configure with CDS_*.
CMD ["cds-service", "serve"]
