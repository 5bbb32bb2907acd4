# Notebook runner: papermill runs of notebooks/ that train into MLflow.
#   python -m apps.cli notebook NOTEBOOK_FILE   (notebooks/NOTEBOOK_FILE -> notebooks/output/NOTEBOOK_FILE)
# Same requirements.lock as every other image; all wheels are prebuilt, so no compiler is needed.

# BuildKit (Docker's default builder since 23.0) runs the RUN --mount cache mounts; no syntax image is pulled.
# ---------------------------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

RUN pip install uv==0.13.8 && python -m venv /opt/venv

WORKDIR /src
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python -r requirements.lock

COPY pyproject.toml README.md ./
COPY apps ./apps
COPY core ./core
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python --no-deps .

# ---------------------------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime

ARG APP_UID=1000

# libgomp1: OpenMP runtime that the LightGBM wheel links against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid "${APP_UID}" app \
    && useradd --uid "${APP_UID}" --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    SM_DATA_DIR=/app/.data \
    SM_LOG_DIR=/app/logs

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY pyproject.toml ./
COPY apps ./apps
COPY core ./core
COPY scripts ./scripts
COPY notebooks ./notebooks
COPY docs ./docs
# The committed demo samples the notebooks read by default (compose mounts ./data over them, read-only).
COPY data ./data

# Outputs go to bind mounts in compose; the directories exist (and are the app user's) without them too.
RUN mkdir -p /app/.data /app/logs /app/notebooks/output /app/docs/ml \
    && chown app:app /app/.data /app/logs /app/notebooks/output /app/docs/ml

# Numeric (DL3066): runtimes that check runAsNonRoot can verify it without reading /etc/passwd.
USER ${APP_UID}:${APP_UID}
CMD ["sh", "-c", "exec python -m apps.cli notebook \"${NOTEBOOK_FILE:-01_data_exploration.ipynb}\""]
