# syntax=docker/dockerfile:1
# border0-reconciler container image.
#
#   docker build -t border0-reconciler:0.1.0 .
#   docker build -t border0-reconciler:0.1.0 \
#     --build-arg BORDER0_CLI_URL=<url of the linux border0 binary, or a .tar.gz holding it> \
#     --build-arg BORDER0_CLI_SHA256=<its sha256> .
#
# The border0 CLI is only needed to run connectors (`border0 socket connect`); without
# BORDER0_CLI_URL the image plans, applies and reconciles, but starts no connector.
# In Kubernetes, pass `--listen 0.0.0.0:9479` to `run` so probes and Prometheus reach it.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build the wheel -------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# --- fetch the border0 CLI (optional) ---------------------------------------------------------
FROM ${PYTHON_IMAGE} AS border0-cli
ARG BORDER0_CLI_URL=""
ARG BORDER0_CLI_SHA256=""
WORKDIR /out
# python:3.11-slim has no curl: urllib downloads, hashlib checks the sha256 when one is given.
RUN python - <<'PY'
import hashlib, io, os, sys, tarfile, urllib.request
url, want = os.environ.get("BORDER0_CLI_URL", ""), os.environ.get("BORDER0_CLI_SHA256", "")
if not url:
    print("BORDER0_CLI_URL not set: building without the border0 CLI")
    sys.exit(0)
data = urllib.request.urlopen(url, timeout=120).read()
got = hashlib.sha256(data).hexdigest()
if want and got != want.lower():
    sys.exit(f"border0 CLI sha256 mismatch: expected {want}, got {got}")
if not want:
    print(f"warning: BORDER0_CLI_SHA256 not set; downloaded sha256 is {got}")
if url.endswith((".tar.gz", ".tgz")):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = next(m for m in tar.getmembers() if os.path.basename(m.name) == "border0")
        data = tar.extractfile(member).read()
with open("border0", "wb") as out:  # in WORKDIR /out
    out.write(data)
os.chmod("border0", 0o755)
PY

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A fixed uid/gid, so Kubernetes securityContext (runAsUser: 10001) and file ownership agree.
RUN groupadd --system --gid 10001 reconciler \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
            --shell /usr/sbin/nologin reconciler
COPY --from=builder /dist/ /tmp/dist/
# [k8s]: lightkube, for `run --leader-elect` (the chart's replicaCount > 1). The wheel pins
# its own version and pyproject.toml the extra's range, which hadolint cannot see.
# hadolint ignore=DL3013
RUN whl="$(ls /tmp/dist/*.whl)" && pip install --no-cache-dir "${whl}[k8s]" && rm -rf /tmp/dist
COPY --from=border0-cli /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /tmp
EXPOSE 9479
ENTRYPOINT ["border0-reconciler"]
CMD ["--help"]
