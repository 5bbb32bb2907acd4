"""Load test of the local stack: ``make load-test`` (headless, ``LOAD_USERS``/``LOAD_SPAWN_RATE``/``LOAD_DURATION``).

User classes (weights in brackets):

* ``IngestUser`` [2]: ``POST /api/v1/data/ingest`` batches of ``--ingest-batch`` readings (default 100) of
  ``load-*`` sensors (auto-registered in development), each user with its own sensors and advancing timestamps.
* ``QueryUser`` [2]: sensors list, one sensor's readings in 5-minute buckets, open alerts.
* ``MlUser`` [3]: ``POST /api/v1/ml/predict`` with the cached champion of ``--predict-model`` (default: the first
  ``anomaly_*`` model with a champion found by ``GET /api/v1/ml/models``), ``POST /api/v1/ml/detect_anomaly``
  (a 20-reading window), ``GET /api/v1/ml/models``.
* ``MlflowRegistryUser`` [1]: ``GET {MLFLOW_TRACKING_URI}/api/2.0/mlflow/registered-models/search``.

Tasks are tagged ``ingest``, ``query``, ``ml``, ``predict``, ``mlflow``: e.g. only the cached-model predictions,
``python -m locust -f locustfile.py --headless -u 5 -r 5 --run-time 30s --tags predict MlUser --host …``.

The API key is ``SM_API_KEY`` and the hosts come from the settings (``--host`` for the API: the Makefile passes
``API_BASE_URL``; ``MLFLOW_TRACKING_URI`` for the registry reads). Nothing here reads the environment itself.
"""

from __future__ import annotations

import itertools
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from locust import FastHttpUser, between, events, tag, task

from core.config import load_settings

logger = logging.getLogger("locustfile")

SETTINGS = load_settings()
API_KEY = SETTINGS.api_key.get_secret_value()
MLFLOW_URL = SETTINGS.mlflow_tracking_uri.rstrip("/")
HEADERS = {"X-API-Key": API_KEY}
SENSOR_TYPES = ("temperature", "vibration", "pressure", "humidity", "voltage")
_user_ids = itertools.count(1)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--ingest-batch", type=int, default=100, help="readings per ingest request")
    parser.add_argument("--predict-model", type=str, default="", help="registered model for /predict")


def _option(environment: Any, name: str, default: Any) -> Any:
    options = getattr(environment, "parsed_options", None)
    return getattr(options, name, default) if options is not None else default


class IngestUser(FastHttpUser):
    weight = 2
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.user_id = next(_user_ids)
        self.batch = int(_option(self.environment, "ingest_batch", 100))
        # start far enough in the past not to collide with real data; each request advances time
        self.clock = datetime.now(UTC) - timedelta(days=30) + timedelta(seconds=self.user_id)

    @tag("ingest")
    @task
    def ingest_batch(self) -> None:
        readings = []
        for i in range(self.batch):
            sensor_type = SENSOR_TYPES[i % len(SENSOR_TYPES)]
            self.clock += timedelta(milliseconds=10)
            readings.append(
                {
                    "sensor_id": f"load-{self.user_id:03d}-{i % 10:02d}",
                    "timestamp": self.clock.isoformat().replace("+00:00", "Z"),
                    "value": round(random.gauss(50.0, 5.0), 3),
                    "metadata": {"sensor_type": sensor_type},
                }
            )
        self.client.post(
            "/api/v1/data/ingest", json=readings, headers=HEADERS, name="POST /data/ingest [batch]"
        )


class QueryUser(FastHttpUser):
    weight = 2
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.sensor_ids: list[str] = []
        with self.client.get(
            "/api/v1/sensors?limit=50", headers=HEADERS, name="GET /sensors", catch_response=True
        ) as response:
            if response.status_code == 200:
                self.sensor_ids = [s["sensor_id"] for s in response.json().get("items", [])]

    @tag("query")
    @task(2)
    def sensors(self) -> None:
        self.client.get("/api/v1/sensors?limit=100", headers=HEADERS, name="GET /sensors")

    @tag("query")
    @task(3)
    def readings_buckets(self) -> None:
        if not self.sensor_ids:
            return
        sensor_id = random.choice(self.sensor_ids)
        self.client.get(
            f"/api/v1/sensors/{sensor_id}/readings?bucket=5m&agg=avg",
            headers=HEADERS,
            name="GET /sensors/{id}/readings?bucket=5m",
        )

    @tag("query")
    @task(1)
    def alerts(self) -> None:
        self.client.get("/api/v1/alerts?status=open&limit=50", headers=HEADERS, name="GET /alerts")


def _window(n: int = 20, anomaly_at: int | None = None) -> list[dict[str, Any]]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        value = 20.0 + random.gauss(0.0, 0.5) + (15.0 if i == anomaly_at else 0.0)
        rows.append({"timestamp": (start + timedelta(minutes=5 * i)).isoformat(), "value": round(value, 3)})
    return rows


class MlUser(FastHttpUser):
    weight = 3
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.model = str(_option(self.environment, "predict_model", "") or "")
        self.sensor_type = "temperature"
        with self.client.get(
            "/api/v1/ml/models", headers=HEADERS, name="GET /ml/models", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            models = response.json().get("items", [])
        if not self.model:
            champions = [
                m["name"] for m in models if m["name"].startswith("anomaly_") and "champion" in m["aliases"]
            ]
            self.model = champions[0] if champions else ""
        if self.model.startswith("anomaly_"):
            self.sensor_type = self.model.removeprefix("anomaly_")
        if not self.model:
            logger.warning("no anomaly_* model with a champion: /predict is not exercised")

    @tag("ml", "predict")
    @task(6)
    def predict(self) -> None:
        if not self.model:
            return
        records = [{"sensor_id": "load-ml", **row} for row in _window(10)]
        self.client.post(
            "/api/v1/ml/predict",
            json={"model_name": self.model, "records": records},
            headers=HEADERS,
            name="POST /ml/predict (cached model)",
        )

    @tag("ml")
    @task(3)
    def detect_anomaly(self) -> None:
        body = {
            "sensor_type": self.sensor_type,
            "readings": [{"sensor_id": "load-ml", **r} for r in _window(20, 15)],
        }
        self.client.post(
            "/api/v1/ml/detect_anomaly", json=body, headers=HEADERS, name="POST /ml/detect_anomaly"
        )

    @tag("ml")
    @task(1)
    def models(self) -> None:
        self.client.get("/api/v1/ml/models", headers=HEADERS, name="GET /ml/models")


class MlflowRegistryUser(FastHttpUser):
    weight = 1
    wait_time = between(0.2, 1.0)

    @tag("mlflow")
    @task
    def search_registered_models(self) -> None:
        self.client.get(
            f"{MLFLOW_URL}/api/2.0/mlflow/registered-models/search?max_results=100",
            name="MLflow GET registered-models/search",
        )


__all__ = ["IngestUser", "MlUser", "MlflowRegistryUser", "QueryUser"]
