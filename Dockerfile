# API and UI image: `python -m apps.cli serve-api` (default) or `python -m apps.cli serve-ui`.
# Same install as the local run path: the pinned requirements.lock, then the project itself without deps.

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

# libgomp1: OpenMP runtime for LightGBM models served by the API.
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
    SM_API_HOST=0.0.0.0 \
    SM_UI_HOST=0.0.0.0 \
    SM_DATA_DIR=/app/.data \
    SM_LOG_DIR=/app/logs

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY pyproject.toml alembic.ini ./
COPY alembic_migrations ./alembic_migrations
COPY apps ./apps
COPY core ./core
COPY ui ./ui
COPY scripts ./scripts
# What GET /api/v1/ml/reports and /api/v1/datasets serve (the console reads them through the API, never from disk).
COPY docs/ml ./docs/ml
COPY data ./data

# Writable by the app user; a named volume mounted here starts with this ownership.
RUN mkdir -p /app/.data /app/logs && chown app:app /app/.data /app/logs

# Numeric (DL3066): runtimes that check runAsNonRoot can verify it without reading /etc/passwd.
USER ${APP_UID}:${APP_UID}
EXPOSE 8000 8501
CMD ["sh", "-c", "alembic upgrade head && exec python -m apps.cli serve-api"]
