"""Champion models from the model registry, cached per sensor type and refreshed in the background.

Contract of an anomaly model (what issue 5 registers)
-----------------------------------------------------
* Registered model name ``anomaly_<sensor_type>`` (``anomaly_temperature``, ``anomaly_vibration`` …); the version
  to use carries the alias ``champion`` (aliases, never the deprecated stages).
* An MLflow **pyfunc** model. ``predict`` receives one ``pandas.DataFrame`` per scored batch with the columns

  ============ ========================== ==============================================================
  column       dtype                      meaning
  ============ ========================== ==============================================================
  sensor_id    object (str)               the reading's sensor (all of the same sensor type)
  timestamp    datetime64[ns, UTC]        the reading's instant
  value        float64                    the reading's value
  ============ ========================== ==============================================================

  sorted by ``sensor_id`` then ``timestamp``; a batch holds the newly ingested readings of one event only
  (a model needing history must carry what it needs, e.g. per-sensor parameters learned in training).
* It returns, in the same order and length, either a DataFrame with a float column ``score`` (higher = more
  anomalous) and a boolean column ``is_anomaly``, or only scores (a 1-D array/Series or a DataFrame without
  ``is_anomaly``), in which case a reading is anomalous when ``score >= SM_ANOMALY_BASELINE_THRESHOLD``.

Runtime behaviour
-----------------
* A sensor type is looked up the first time the agent meets it (one registry call per type, bounded by
  ``SM_ANOMALY_MODEL_TIMEOUT_S``); its champion is loaded once per ``(name, version)`` and cached. Scoring
  only uses the cache: MLflow is never called per reading.
* Every ``SM_ANOMALY_MODEL_REFRESH_S`` (checked when events arrive) a background task re-resolves the aliases of
  the known types and loads a new version when the alias moved; a removed alias drops the model. While MLflow is
  unreachable the cached champions stay in use, types without one use the ``robust_z`` baseline; this is logged
  once (and again when MLflow is back) and counted in ``sm_anomaly_model_loads_total{result}``.
* The registry is the :class:`~core.ml.registry.port.ModelRegistry` port (in production the MLflow adapter,
  :mod:`core.ml.registry.mlflow_registry`, which probes an HTTP tracking URI with a TCP connect first so that an
  MLflow that is down costs milliseconds, not MLflow's own retry schedule). Its blocking calls run in daemon
  threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from core.ml.registry.port import CHAMPION, ModelRegistry, RegistryUnavailable, alias_or_none
from core.observability.metrics import ANOMALY_MODEL_LOADS_TOTAL

if TYPE_CHECKING:  # pandas is imported where a champion scores (~0.3 s and ~40 MB not paid by every process)
    import pandas as pd

logger = logging.getLogger("core.anomaly.champion")

ALIAS = CHAMPION
METHOD = "model"
INPUT_COLUMNS = ("sensor_id", "timestamp", "value")


def registered_model_name(sensor_type: str) -> str:
    return f"anomaly_{sensor_type}"


@dataclass(frozen=True, slots=True)
class Champion:
    """A loaded champion model and where it comes from."""

    name: str
    version: str
    model: Any

    def score(self, frame: pd.DataFrame, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, flags)`` for ``frame`` (columns ``INPUT_COLUMNS``), see the module docstring."""
        import pandas as pd

        output = self.model.predict(frame)
        flags: np.ndarray | None = None
        if isinstance(output, pd.DataFrame):
            if "score" not in output.columns:
                raise ValueError(f"model {self.name}/{self.version} returned no 'score' column")
            scores = output["score"].to_numpy(dtype=float)
            if "is_anomaly" in output.columns:
                flags = output["is_anomaly"].to_numpy(dtype=bool)
        else:
            array = np.asarray(output, dtype=float)
            if array.ndim == 2 and array.shape[1] == 2:
                scores, flags = array[:, 0], array[:, 1].astype(bool)
            else:
                scores = array.reshape(-1)
        if len(scores) != len(frame):
            raise ValueError(
                f"model {self.name}/{self.version} returned {len(scores)} scores for {len(frame)} readings"
            )
        if flags is None:
            flags = scores >= threshold
        return scores, flags


async def run_in_daemon_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking ``fn`` in a daemon thread (never blocks interpreter or loop shutdown) and await it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def run() -> None:
        try:
            value, ok = fn(*args), True
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            value, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(settle, ok, value)

    threading.Thread(target=run, name="sm-anomaly-mlflow", daemon=True).start()
    return await future


_UNKNOWN = object()


class ChampionModels:
    """Per sensor type: the cached champion (or ``None``: use the baseline)."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        refresh_s: float = 60.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._by_type: dict[str, Champion | None] = {}
        self._models: dict[tuple[str, str], Any] = {}
        self._lock = asyncio.Lock()
        self._last_refresh = clock()
        self._refresh_task: asyncio.Task[None] | None = None
        self._unreachable = False

    # --- reading the cache (no I/O) ------------------------------------------------------------------------
    def get(self, sensor_type: str) -> Champion | None:
        return self._by_type.get(sensor_type)

    def known_types(self) -> list[str]:
        return list(self._by_type)

    # --- lookups -------------------------------------------------------------------------------------------
    async def ensure(self, sensor_types: Iterable[str]) -> None:
        """Look up the types never seen before (once each); failures leave them on the baseline."""
        missing = sorted({t for t in sensor_types if t not in self._by_type})
        if not missing:
            return
        async with self._lock:
            missing = [t for t in missing if t not in self._by_type]
            if missing:
                await self._resolve(missing, first_lookup=True)

    async def refresh(self) -> None:
        """Re-resolve the champion alias of every known type; load versions whose alias moved."""
        async with self._lock:
            self._last_refresh = self._clock()
            if self._by_type:
                await self._resolve(list(self._by_type), first_lookup=False)

    def refresh_if_due(self) -> None:
        """Start a background ``refresh`` when the last one is older than ``refresh_s`` (one at a time)."""
        if self._clock() - self._last_refresh < self.refresh_s:
            return
        if self._refresh_task is not None and not self._refresh_task.done():
            return
        self._last_refresh = self._clock()
        self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_quietly())

    async def aclose(self) -> None:
        task, self._refresh_task = self._refresh_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception:  # background: never an unhandled task error
            logger.exception("anomaly model refresh failed")

    async def _resolve(self, sensor_types: list[str], *, first_lookup: bool) -> None:
        try:
            found = await asyncio.wait_for(
                run_in_daemon_thread(self._resolve_blocking, sensor_types), self.timeout_s
            )
        except (RegistryUnavailable, TimeoutError, OSError) as exc:
            self._note_unreachable(str(exc) or type(exc).__name__)
            if first_lookup:
                for sensor_type in sensor_types:
                    self._by_type.setdefault(sensor_type, None)  # baseline until a refresh finds a champion
            return
        if self._unreachable:
            self._unreachable = False
            logger.info("MLflow registry reachable again; champion models in use where they exist")
        for sensor_type, outcome in found.items():
            if isinstance(outcome, Champion) or outcome is None:
                self._by_type[sensor_type] = outcome
            elif first_lookup:  # a failure (already logged) on first sight: baseline for now
                self._by_type.setdefault(sensor_type, None)
        in_use = {(c.name, c.version) for c in self._by_type.values() if c is not None}
        for key in [k for k in self._models if k not in in_use]:
            del self._models[key]

    def _resolve_blocking(self, sensor_types: list[str]) -> dict[str, object]:
        """Thread: ``{type: Champion | None (no champion) | _UNKNOWN (failed, keep what we have)}``."""
        self.registry.check_reachable()
        out: dict[str, object] = {}
        for sensor_type in sensor_types:
            name = registered_model_name(sensor_type)
            try:
                version = alias_or_none(self.registry, name, ALIAS)
                if version is None:
                    current = self._by_type.get(sensor_type)
                    if current is not None or sensor_type not in self._by_type:
                        ANOMALY_MODEL_LOADS_TOTAL.labels(result="no_champion").inc()
                        logger.info("no %s model for %s; using the robust_z baseline", ALIAS, name)
                    out[sensor_type] = None
                    continue
                model = self._models.get((name, version))
                if model is None:
                    model = self.registry.load(name, version)
                    self._models[(name, version)] = model
                    ANOMALY_MODEL_LOADS_TOTAL.labels(result="loaded").inc()
                    logger.info("loaded anomaly model %s version %s (%s)", name, version, ALIAS)
                out[sensor_type] = Champion(name, version, model)
            except RegistryUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - one type's failure must not hide the others
                ANOMALY_MODEL_LOADS_TOTAL.labels(result="failed").inc()
                logger.warning("could not load the %s model of %s: %s", ALIAS, name, exc)
                out[sensor_type] = _UNKNOWN
        return out

    def _note_unreachable(self, reason: str) -> None:
        ANOMALY_MODEL_LOADS_TOTAL.labels(result="unreachable").inc()
        if not self._unreachable:
            self._unreachable = True
            logger.warning(
                "MLflow registry unavailable (%s); scoring with cached champions or the robust_z baseline",
                reason,
            )


__all__ = [
    "ALIAS",
    "INPUT_COLUMNS",
    "METHOD",
    "Champion",
    "ChampionModels",
    "ModelRegistry",
    "RegistryUnavailable",
    "registered_model_name",
    "run_in_daemon_thread",
]
