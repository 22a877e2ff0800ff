# border0-reconciler container image. Plain Dockerfile syntax (no heredocs, no BuildKit-only
# flags), so any OCI builder builds it: docker, buildah/podman, kaniko. docs/development.md shows
# buildah and podman.
#
#   docker build -t border0-reconciler:0.2.0 .
#   buildah build -t border0-reconciler:0.2.0 \
#     --build-arg BORDER0_CLI_URL=<url of the linux border0 binary, or a .tar.gz holding it> \
#     --build-arg BORDER0_CLI_SHA256=<its sha256> \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%FT%TZ)" .
#
# The border0 CLI is only needed to run connectors (`border0 connector start`); without
# BORDER0_CLI_URL the image plans, applies and reconciles, but starts no connector.
# In Kubernetes, pass `--listen 0.0.0.0:9479` to `run` so probes and Prometheus reach it.
# It runs as uid 10001 with a read-only root filesystem: it writes only under /tmp (mount an
# emptyDir or a tmpfs there).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build the wheel -------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY reconciler ./reconciler
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# --- fetch the border0 CLI (optional) ---------------------------------------------------------
FROM ${PYTHON_IMAGE} AS border0-cli
ARG BORDER0_CLI_URL=""
ARG BORDER0_CLI_SHA256=""
WORKDIR /out
COPY scripts/fetch-border0-cli.py /fetch-border0-cli.py
RUN python /fetch-border0-cli.py

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# Declared again: an ARG before the first FROM is seen only by FROM lines.
ARG PYTHON_IMAGE
ARG VERSION=0.2.0
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="border0-reconciler" \
      org.opencontainers.image.description="GitOps for border0: sockets and policies as code, planned, applied and kept running." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
# A fixed uid/gid, so Kubernetes securityContext (runAsUser: 10001) and file ownership agree.
RUN groupadd --system --gid 10001 reconciler \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
            --shell /usr/sbin/nologin reconciler
COPY --from=builder /dist/ /tmp/dist/
# [k8s]: lightkube, for `run --leader-elect` (the chart's replicaCount > 1). The wheel pins
# its own version and pyproject.toml the extra's range, which hadolint cannot see. pip compiles
# the bytecode now, so nothing needs writing outside /tmp at run time (read-only root).
# hadolint ignore=DL3013
RUN whl="$(ls /tmp/dist/*.whl)" && pip install --no-cache-dir --compile "${whl}[k8s]" \
 && rm -rf /tmp/dist
COPY --from=border0-cli /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /tmp
EXPOSE 9479
ENTRYPOINT ["border0-reconciler"]
CMD ["--help"]
