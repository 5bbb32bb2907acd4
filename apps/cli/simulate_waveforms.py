"""``simulate --waveforms``: the demo's vibration snapshots (``core.simulation.waveform_live``), wired to the
physics simulator of ``core.ml.vibration.simulator``; registers the demo waveform sensor when it is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.config import Settings


def bearing_signal(fault: str, fs: float, rpm: float, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """A 6205 recording with ``fault`` (``none``, ``outer``, ``inner``, ``ball``)."""
    from core.ml.vibration.simulator import simulate_signal

    x: NDArray[np.float64] = simulate_signal(fault, fs=fs, rpm=rpm, n_samples=n, rng=rng)
    return x


async def _register(session: AsyncSession) -> str:
    from core.errors import AppError
    from core.fleet.repository import FleetRepository
    from core.simulation.catalogue import DEMO_ASSETS
    from core.simulation.waveform_live import DEMO_WAVEFORM_SENSOR as spec
    from core.waveforms.repository import WaveformRepository
    from core.waveforms.schemas import WaveformSensorCreate
    from core.waveforms.service import WaveformService

    if await WaveformRepository(session).config(spec.sensor_id) is not None:
        return f"waveform sensor {spec.sensor_id} is registered"
    asset = next(a for a in DEMO_ASSETS if a.name == spec.asset_name)
    ids, _ = await FleetRepository(session).upsert_assets([asset])
    try:
        await WaveformService(session).register(
            WaveformSensorCreate(
                sensor_id=spec.sensor_id,
                asset_id=ids[spec.asset_name],
                bearing=spec.bearing,
                mounting=spec.mounting,
                nominal_rpm=spec.nominal_rpm,
            )
        )
    except AppError as exc:
        raise RuntimeError(f"cannot register the demo waveform sensor {spec.sensor_id}: {exc}") from None
    return f"waveform sensor {spec.sensor_id} registered on {spec.asset_name} ({spec.bearing} bearing)"


async def ensure_demo_sensor(settings: Settings) -> str:
    """Register the demo waveform sensor (and its asset) unless it is; a line saying what was done."""
    from apps.cli.common import in_transaction

    return await in_transaction(settings, _register)


__all__ = ["bearing_signal", "ensure_demo_sensor"]
