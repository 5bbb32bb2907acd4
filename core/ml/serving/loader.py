"""ML serving: registered models from the model registry, cached in the process, behind ``/api/v1/ml``.

* Loaded models are cached per ``(name, version)`` (LRU, ``SM_ML_MODEL_CACHE_SIZE``); an alias
  (``champion``) is resolved to a version at most every ``SM_ML_ALIAS_TTL_S`` seconds, so a promotion reaches the
  API within that time and a request for a cached model makes no registry call at all.
* The registry is the :class:`~core.ml.registry.port.ModelRegistry` port (in production the MLflow adapter,
  :mod:`core.ml.registry.mlflow_registry`, which probes an HTTP tracking URI with a TCP connect first so an MLflow
  that is down answers 503 in milliseconds instead of after MLflow's own retry schedule). Every registry call and
  every ``predict`` runs in a worker thread (``starlette.concurrency.run_in_threadpool``), never on the event loop.
* Errors (the port's, problem details): unknown model or version → 404; a model without the requested alias → 409;
  registry unreachable or failing → 503; input that lacks the columns of the model's signature (or that the model
  rejects) → 422 naming what is wrong.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from core.errors import Conflict, ValidationFailed
from core.ml.registry.port import ModelInfo, ModelRegistry, ModelRegistryError, RegistryFailed

if TYPE_CHECKING:
    # pandas is imported by the functions that build or read frames: the first request that serves a model pays
    # for it, not the start of every API process
    import pandas as pd

    from core.config import Settings
    from core.ml.registry.promotion import PromotionDecision

logger = logging.getLogger("core.ml.serving.loader")


@dataclass(frozen=True, slots=True)
class LoadedModel:
    name: str
    version: str
    model: Any
    input_columns: tuple[str, ...]
    """Columns of the signature's input schema (empty: no schema, anything goes)."""
    required_columns: tuple[str, ...]
    datetime_columns: tuple[str, ...] = ()
    """Signature columns of type datetime: MLflow's schema enforcement accepts only timezone-naive values there,
    so timezone-aware input is converted to naive UTC before ``predict`` (naive = UTC by convention)."""
    float_columns: tuple[str, ...] = ()
    """Signature columns of type double/float: JSON integers (``300``) are sent as floats (MLflow refuses to
    convert int64 to float64)."""
    integer_columns: tuple[str, ...] = ()
    """Signature columns of type long/integer: integral JSON floats (``1500.0``) are sent as int64; other values
    are left for MLflow to reject with its message."""


def _schema_columns(model: Any) -> dict[str, tuple[str, ...]]:
    """The signature's input columns: ``input_columns``, ``required_columns`` and the typed groups of
    :class:`LoadedModel` (all empty for a model without a named input schema)."""
    try:
        schema = model.metadata.get_input_schema()
    except Exception:  # noqa: BLE001 - a model without metadata has no schema
        return {}
    if schema is None or not schema.has_input_names():
        return {}

    def typed(*suffixes: str) -> tuple[str, ...]:
        return tuple(str(s.name) for s in schema.inputs if str(getattr(s, "type", "")).endswith(suffixes))

    return {
        "input_columns": tuple(str(n) for n in schema.input_names()),
        "required_columns": tuple(str(s.name) for s in schema.inputs if getattr(s, "required", True)),
        "datetime_columns": typed("datetime"),
        "float_columns": typed("double", "float"),
        "integer_columns": typed("long", "integer"),
    }


def mlflow_errors() -> tuple[type[Exception], ...]:
    """``(MlflowException,)`` once MLflow is imported (a model loaded by MLflow imported it; a stand-in model did
    not), else ``()``: serving never imports MLflow only to catch its errors."""
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")
    return () if mlflow_exceptions is None else (mlflow_exceptions.MlflowException,)


def input_errors() -> tuple[type[Exception], ...]:
    """The exceptions by which a model refuses its input: ``ValueError``, ``TypeError``, ``KeyError`` and MLflow's
    (schema enforcement; :func:`mlflow_errors`)."""
    return (ValueError, TypeError, KeyError, *mlflow_errors())


def coerce_numbers(frame: pd.DataFrame, loaded: LoadedModel) -> pd.DataFrame:
    """JSON numbers → the signature's numeric types where that loses nothing (a copy when anything changes)."""
    import pandas as pd

    changes: dict[str, pd.Series] = {}
    for column in loaded.float_columns:
        if column in frame.columns and pd.api.types.is_integer_dtype(frame[column]):
            changes[column] = frame[column].astype("float64")
    for column in loaded.integer_columns:
        values = frame[column] if column in frame.columns else None
        integral = (
            values is not None
            and pd.api.types.is_float_dtype(values)
            and bool(values.notna().all() and (values == values.round()).all())
        )
        if integral and values is not None:
            changes[column] = values.astype("int64")
    return frame.assign(**changes) if changes else frame


def naive_utc(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` with the timezone-aware ``columns`` converted to naive UTC (a copy when anything changes)."""
    import pandas as pd

    aware = [c for c in columns if c in frame.columns and isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    if not aware:
        return frame
    frame = frame.copy()
    for column in aware:
        frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


class ModelServer:
    """Per-process model cache on one model registry (blocking parts run in worker threads)."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        alias_ttl_s: float = 30.0,
        cache_size: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.alias_ttl_s = alias_ttl_s
        self.cache_size = cache_size
        self._clock = clock
        self._models: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._aliases: dict[tuple[str, str], tuple[str, float]] = {}
        self._listing: tuple[list[ModelInfo], float] | None = None
        self._lock = threading.Lock()
        self._load_locks: dict[tuple[str, str], threading.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelServer:
        """On the MLflow registry of ``settings`` (probed with at most ``min(SM_READY_TIMEOUT_S, 2)`` seconds)."""
        from core.ml.registry.mlflow_registry import MlflowRegistry

        return cls(
            MlflowRegistry(settings.mlflow_tracking_uri, probe_timeout_s=min(settings.ready_timeout_s, 2.0)),
            alias_ttl_s=settings.ml_alias_ttl_s,
            cache_size=settings.ml_model_cache_size,
        )

    # --- blocking helpers (worker threads) -------------------------------------------------------------------
    def _resolve(self, name: str, ref: str) -> str:
        if ref.isdigit():
            return ref
        key = (name, ref)
        now = self._clock()
        with self._lock:
            cached = self._aliases.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        version = self.registry.alias_version(name, ref)
        with self._lock:
            self._aliases[key] = (version, now + self.alias_ttl_s)
        return version

    def _load(self, name: str, version: str) -> LoadedModel:
        key = (name, version)
        with self._lock:
            cached = self._models.get(key)
            if cached is not None:
                self._models.move_to_end(key)
                return cached
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:  # one download per version, however many requests wait for it
            with self._lock:
                cached = self._models.get(key)
            if cached is not None:
                return cached
            model = self.registry.load(name, version)
            schema = _schema_columns(model)
            loaded = LoadedModel(
                name,
                version,
                model,
                schema.get("input_columns", ()),
                schema.get("required_columns", ()),
                schema.get("datetime_columns", ()),
                schema.get("float_columns", ()),
                schema.get("integer_columns", ()),
            )
            logger.info("model loaded", extra={"model_name": name, "model_version": version})
            with self._lock:
                self._models[key] = loaded
                while len(self._models) > self.cache_size:
                    self._models.popitem(last=False)
                self._load_locks.pop(key, None)
            return loaded

    def get_sync(self, name: str, ref: str = "champion") -> LoadedModel:
        return self._load(name, self._resolve(name, ref))

    def _cached(self, name: str, ref: str) -> LoadedModel | None:
        """The model if alias and model are both cached (no thread hop, no registry call)."""
        with self._lock:
            if ref.isdigit():
                version: str | None = ref
            else:
                entry = self._aliases.get((name, ref))
                version = entry[0] if entry is not None and entry[1] > self._clock() else None
            if version is None:
                return None
            loaded = self._models.get((name, version))
            if loaded is not None:
                self._models.move_to_end((name, version))
            return loaded

    # --- async API ---------------------------------------------------------------------------------------------
    async def get(self, name: str, ref: str = "champion") -> LoadedModel:
        cached = self._cached(name, ref)
        return cached if cached is not None else await run_in_threadpool(self.get_sync, name, ref)

    async def predict(
        self, loaded: LoadedModel, frame: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> Any:
        """``loaded.model.predict(frame, params)`` in a worker thread; input problems → 422."""
        missing = [c for c in loaded.required_columns if c not in frame.columns]
        if missing:
            raise ValidationFailed(
                f"model {loaded.name} v{loaded.version} needs the input columns {missing} (missing)",
                errors=[
                    {"loc": ["body", "records", c], "msg": "column missing", "type": "missing"}
                    for c in missing
                ],
                extra={"missing_columns": missing, "expected_columns": list(loaded.input_columns)},
            )
        if loaded.input_columns:
            frame = frame[[c for c in loaded.input_columns if c in frame.columns]]
        frame = coerce_numbers(naive_utc(frame, loaded.datetime_columns), loaded)
        return await run_in_threadpool(self._predict_sync, loaded, frame, params)

    @staticmethod
    def _predict_sync(loaded: LoadedModel, frame: pd.DataFrame, params: dict[str, Any] | None) -> Any:
        try:
            return loaded.model.predict(frame, params=params) if params else loaded.model.predict(frame)
        except input_errors() as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise ValidationFailed(
                f"model {loaded.name} v{loaded.version} rejected the input: {message.splitlines()[0][:500]}"
            ) from None

    async def list_models(self) -> list[ModelInfo]:
        """Every registered model with versions, aliases and run metrics (cached for the alias TTL)."""
        now = self._clock()
        if self._listing is not None and self._listing[1] > now:
            return self._listing[0]
        models = await run_in_threadpool(self.registry.list_models)
        self._listing = (models, now + self.alias_ttl_s)
        return models

    async def promote(self, name: str, version: str, *, force: bool, margin: float | None) -> PromotionDecision:
        """``promote_if_better`` (or ``force_promote``) in a worker thread; forget the model's cached aliases."""
        from core.ml.registry import promotion

        def work() -> PromotionDecision:
            if force:
                return promotion.force_promote(name, version, registry=self.registry)
            return promotion.promote_if_better(name, version, registry=self.registry, margin=margin)

        what = f"model {name!r} version {version}"
        try:
            return await run_in_threadpool(work)
        except promotion.RegistryError as exc:
            raise Conflict(str(exc)) from None
        except ModelRegistryError:
            raise
        except OSError as exc:  # the evaluation's own MLflow traffic (artifacts): requests' errors are OSErrors
            raise RegistryFailed(f"MLflow failed on {what}: {type(exc).__name__}") from None
        except mlflow_errors() as exc:
            raise RegistryFailed(f"MLflow failed on {what}: {str(exc).splitlines()[0]}") from None
        finally:
            with self._lock:
                for key in [k for k in self._aliases if k[0] == name]:
                    del self._aliases[key]
                self._listing = None

    async def get_model(self, name: str) -> ModelInfo:
        return await run_in_threadpool(self.registry.get_model, name)


# --- frames -------------------------------------------------------------------------------------------------------
def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Input rows → DataFrame; a ``timestamp`` column becomes ``datetime64[ns, UTC]`` (the sensor models' contract)."""
    import pandas as pd

    frame = pd.DataFrame.from_records(records)
    if "timestamp" in frame.columns:
        try:
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise ValidationFailed(f"column 'timestamp' is not ISO 8601: {exc}") from None
    return frame


def output_records(output: Any) -> list[dict[str, Any]]:
    """A pyfunc output (DataFrame, Series, array, list) → JSON-ready rows (ISO timestamps, NaN → null)."""
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        frame = output
    elif isinstance(output, pd.Series):
        frame = output.to_frame(name=str(output.name) if output.name is not None else "prediction")
    else:
        array = np.asarray(output)
        if array.ndim <= 1:
            frame = pd.DataFrame({"prediction": array.reshape(-1)})
        else:
            frame = pd.DataFrame(array.reshape(len(array), -1)).add_prefix("prediction_")
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms"))  # type: ignore[no-any-return]


def readings_frame(sensor_ids: list[str], timestamps: list[Any], values: list[float]) -> pd.DataFrame:
    """The sensor models' input: ``sensor_id`` str, ``timestamp`` datetime64[ns, UTC], ``value`` float64."""
    import pandas as pd

    return pd.DataFrame(
        {
            "sensor_id": pd.Series(sensor_ids, dtype=object),
            "timestamp": pd.to_datetime(pd.Series(timestamps), utc=True).astype("datetime64[ns, UTC]"),
            "value": pd.Series(values, dtype="float64"),
        }
    )


__all__ = [
    "LoadedModel",
    "ModelServer",
    "input_errors",
    "naive_utc",
    "output_records",
    "readings_frame",
    "records_frame",
]
