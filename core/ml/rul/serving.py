"""The RUL estimate of an asset from its stored readings (``GET /api/v1/assets/{id}/rul``, the scheduling agent).

* **Model**: ``rul_<kind>`` where kind is the asset's ``kind`` lower-cased with spaces as ``_`` (an asset of kind
  ``turbofan`` is read by ``rul_turbofan``), unless a model name is given; its ``champion`` version, through the
  process's :class:`~core.ml.serving.loader.ModelServer` (cached; an alias is re-resolved at most every
  ``SM_ML_ALIAS_TTL_S``).
* **Channels**: the model's metadata names its input channels (C-MAPSS mnemonics: ``T24``, ``T30``, ``Ps30`` …). The
  asset's sensor whose ``type`` equals a channel name (case-insensitive; retired sensors ignored) is read for that
  channel. Every channel needs exactly one sensor.
* **Cycles**: the timestamps at which all channel sensors have a reading (:mod:`core.ml.rul.repository`); the
  estimate reads the last ``max(window) + 1`` of them and numbers them by the asset's total count of cycles, so it
  equals the estimate from the full history. ``cycle_seconds`` is the median spacing of those cycles and converts
  cycles to time.

Errors (problem details): unknown asset → 404; no model name (the asset has no kind) → 409; no such registered
model → 404, no champion → 409, registry unreachable → 503; a channel without a sensor, or with two → 409; fewer
complete cycles than the model's ``min_cycles`` → 409; values the model rejects → 422.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool

from core.errors import Conflict, NotFound, ValidationFailed
from core.ml.rul.repository import AssetCycles, RulRepository
from core.ml.rul.schemas import RulEstimateRead
from core.ml.serving.loader import LoadedModel, ModelServer

FAMILY_PREFIX = "rul_"


class RulUnavailable(Conflict):
    """The asset cannot be estimated as it is configured (no kind, an unmapped channel, too few cycles)."""

    slug = "rul-unavailable"
    title = "RUL Estimate Unavailable"


def model_name_for(kind: str | None) -> str | None:
    """``rul_<kind>`` (lower case, runs of spaces/dashes as ``_``), None without a kind."""
    if kind is None or not kind.strip():
        return None
    return FAMILY_PREFIX + re.sub(r"[\s\-]+", "_", kind.strip().lower())


def map_channels(channels: Sequence[str], sensors: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Channel → sensor_id by sensor type (case-insensitive); :class:`RulUnavailable` for a channel with no sensor
    or several."""
    by_type: dict[str, list[str]] = {}
    for sensor_id, sensor_type in sensors:
        by_type.setdefault(sensor_type.strip().lower(), []).append(sensor_id)
    missing = [c for c in channels if c.lower() not in by_type]
    doubled = {c: by_type[c.lower()] for c in channels if len(by_type.get(c.lower(), [])) > 1}
    if missing:
        raise RulUnavailable(
            f"the asset has no sensor of type {', '.join(missing)} (the model reads the channels "
            f"{', '.join(channels)}: one sensor per channel, its type the channel name)"
        )
    if doubled:
        detail = "; ".join(f"{c}: {', '.join(ids)}" for c, ids in doubled.items())
        raise RulUnavailable(f"several sensors of the asset have the type of one channel ({detail})")
    return {c: by_type[c.lower()][0] for c in channels}


def model_facts(model: Any) -> dict[str, Any]:
    """``channels``, ``min_cycles``, ``window`` (cycles of history the features read) and ``interval`` of a loaded
    ``rul_*`` model (a :class:`~core.ml.rul.model.RulModel` or its pyfunc)."""
    from core.ml.rul.model import model_of

    inner = model_of(model)
    stored = getattr(getattr(model, "metadata", None), "metadata", None) or {}
    meta = inner.metadata() if inner is not None else stored
    if not meta.get("channels"):
        raise RulUnavailable("the model states no input channels: not a RUL model")
    windows = [int(w) for w in (*meta.get("mean_windows", ()), *meta.get("slope_windows", ()))] or [1]
    return {
        "channels": [str(c) for c in meta["channels"]],
        "min_cycles": int(meta.get("min_cycles", 1)),
        "window": max(windows),
        "interval": float(meta.get("interval", 0.9)),
    }


def trajectory(cycles: AssetCycles, channels: dict[str, str]) -> tuple[Any, list[datetime]]:
    """The model input (``unit`` 1, ``cycle`` numbered so that the last is ``cycles.total``, a column per channel)
    and the cycles' timestamps, oldest first."""
    import pandas as pd

    frame = pd.DataFrame(cycles.rows, columns=["sensor_id", "timestamp", "value"])
    wide = frame.pivot(index="timestamp", columns="sensor_id", values="value").sort_index()
    times = [t.to_pydatetime() for t in wide.index]
    out = pd.DataFrame({c: wide[sensor_id].to_numpy(dtype=float) for c, sensor_id in channels.items()})
    out.insert(0, "cycle", range(cycles.total - len(wide) + 1, cycles.total + 1))
    out.insert(0, "unit", 1)
    return out, times


def cycle_seconds(times: Sequence[datetime]) -> float | None:
    """Median spacing of consecutive cycle times in seconds (None with fewer than two cycles)."""
    if len(times) < 2:
        return None
    return float(statistics.median((b - a).total_seconds() for a, b in zip(times[:-1], times[1:], strict=True)))


@dataclass(frozen=True)
class RulEstimate:
    asset_id: int
    model_name: str
    model_version: str
    rul: float
    lower: float
    upper: float
    interval: float
    cycles: int
    last_cycle_at: datetime
    cycle_seconds: float | None
    channels: dict[str, str]
    computed_at: datetime

    @property
    def lower_bound_at(self) -> datetime | None:
        """When the lower bound of the interval is reached (last cycle + lower × cycle duration)."""
        if self.cycle_seconds is None:
            return None
        return self.last_cycle_at + timedelta(seconds=self.lower * self.cycle_seconds)

    def read(self) -> RulEstimateRead:
        return RulEstimateRead(
            asset_id=self.asset_id,
            model_name=self.model_name,
            model_version=self.model_version,
            rul_cycles=self.rul,
            rul_lower_cycles=self.lower,
            rul_upper_cycles=self.upper,
            interval=self.interval,
            cycles=self.cycles,
            last_cycle_at=self.last_cycle_at,
            cycle_seconds=self.cycle_seconds,
            lower_bound_at=self.lower_bound_at,
            channels=self.channels,
            computed_at=self.computed_at,
        )


async def estimate_asset(
    repo: RulRepository, server: ModelServer, asset_id: int, model_name: str | None = None
) -> RulEstimate:
    """The asset's RUL estimate (module docstring; the errors listed there)."""
    exists, kind = await repo.asset_kind(asset_id)
    if not exists:
        raise NotFound(f"asset {asset_id} does not exist")
    name = model_name or model_name_for(kind)
    if name is None:
        raise RulUnavailable(
            f"asset {asset_id} has no kind, so no RUL model (rul_<kind>) is named for it; set its kind or ask for a "
            "model with ?model=rul_<name>"
        )
    if not name.startswith(FAMILY_PREFIX):
        raise ValidationFailed(f"{name!r} is not a RUL model (rul_<name>)")
    loaded = await server.get(name, "champion")
    return await estimate_with(repo, loaded, asset_id)


async def estimate_with(repo: RulRepository, loaded: LoadedModel, asset_id: int) -> RulEstimate:
    """The estimate of the asset with an already loaded model."""
    facts = model_facts(loaded.model)
    channels = map_channels(facts["channels"], await repo.sensors(asset_id))
    cycles = await repo.last_cycles(list(channels.values()), facts["window"] + 1)
    if cycles.total < facts["min_cycles"]:
        raise RulUnavailable(
            f"asset {asset_id} has {cycles.total} complete cycle(s) (a reading of each of the {len(channels)} channel "
            f"sensors at the same time); {loaded.name} needs at least {facts['min_cycles']}"
        )
    frame, times = trajectory(cycles, channels)
    try:
        out = await run_in_threadpool(_predict, loaded.model, frame)
    except ValueError as exc:
        raise ValidationFailed(f"model {loaded.name} v{loaded.version} rejected the asset's readings: {exc}") from None
    row = out.iloc[-1]
    return RulEstimate(
        asset_id=asset_id,
        model_name=loaded.name,
        model_version=loaded.version,
        rul=float(row["rul"]),
        lower=float(row["rul_lower"]),
        upper=float(row["rul_upper"]),
        interval=facts["interval"],
        cycles=cycles.total,
        last_cycle_at=times[-1].astimezone(UTC),
        cycle_seconds=cycle_seconds(times),
        channels=channels,
        computed_at=datetime.now(UTC),
    )


def _predict(model: Any, frame: Any) -> Any:
    from core.ml.rul.model import predict_last

    return predict_last(model, frame)


__all__ = [
    "FAMILY_PREFIX",
    "RulEstimate",
    "RulUnavailable",
    "cycle_seconds",
    "estimate_asset",
    "estimate_with",
    "map_channels",
    "model_facts",
    "model_name_for",
    "trajectory",
]
