"""Waveform sensors and snapshot ingest (services flush, never commit; SQL in ``core.waveforms.repository``).

``register``: the ``vibration_waveform`` sensor and its two feature sensors (``<id>.rms``, type ``acceleration``
in the sensor's unit; ``<id>.kurtosis``, type ``kurtosis``) on one asset, with the bearing configuration.

``ingest``: one snapshot in the caller's transaction — the samples as float32 bytes, RMS and kurtosis as
ordinary readings of the feature sensors (so charts, anomaly detection and alert rules see them), then
``WaveformIngested`` and ``ReadingsIngested`` to the outbox (published after the commit). A snapshot of the
sensor at a timestamp already stored is a duplicate: nothing is written, the stored one is answered. Retention
runs here too, for the sensor only and bounded: samples older than ``SM_WAVEFORM_SAMPLES_RETENTION_DAYS`` (30)
are dropped (the row, features and diagnoses stay), rows older than ``SM_RETENTION_DAYS`` are deleted (their
diagnoses stay).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.errors import NotFound, ValidationFailed
from core.events.outbox import add_to_outbox
from core.events.types import ReadingsIngested, WaveformIngested
from core.fleet.schemas import SensorCreate
from core.fleet.service import FleetService
from core.ml.vibration.bearings import BearingGeometry, get_bearing
from core.paging import Page
from core.readings.repository import ReadingRepository, ReadingRow
from core.waveforms import samples as codec
from core.waveforms.models import WAVEFORM_SENSOR_TYPE, WaveformDiagnosis, WaveformSnapshot
from core.waveforms.repository import SensorConfig, WaveformRepository
from core.waveforms.schemas import (
    KURTOSIS_SUFFIX,
    MAX_SAMPLES,
    MIN_SAMPLES,
    RMS_SUFFIX,
    DiagnosisRead,
    SnapshotAccepted,
    SnapshotCreate,
    SnapshotFeatures,
    WaveformSensorCreate,
    WaveformSensorRead,
)

#: Samples older than this are dropped (the snapshot row, its RMS/kurtosis and its diagnosis stay).
PURGE_BATCH = 16
#: How far in the future a snapshot's timestamp may lie (device clock skew), as for readings.
MAX_FUTURE = timedelta(minutes=5)


def defect_orders(geometry: BearingGeometry) -> dict[str, float]:
    """The bearing's defect frequencies in orders of the shaft speed, as the API shows them (4 decimals)."""
    return {k: round(v, 4) for k, v in geometry.orders().items()}


def sensor_read(sensor: SensorConfig) -> WaveformSensorRead:
    c = sensor.config
    return WaveformSensorRead(
        sensor_id=c.sensor_id,
        asset_id=sensor.asset_id,
        bearing=c.bearing,
        mounting=c.mounting,
        nominal_rpm=c.nominal_rpm,
        unit=sensor.unit,
        band_low_hz=c.band_low_hz,
        band_high_hz=c.band_high_hz,
        rms_sensor_id=c.rms_sensor_id,
        kurtosis_sensor_id=c.kurtosis_sensor_id,
        defect_orders=defect_orders(get_bearing(c.bearing)),
        created_at=c.created_at,
    )


class WaveformService:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._repo = WaveformRepository(session)

    # --- sensors ------------------------------------------------------------------------------------------------
    async def register(self, body: WaveformSensorCreate) -> WaveformSensorRead:
        """Create the waveform sensor, its feature sensors and its configuration (409 when an id is taken)."""
        try:
            geometry = get_bearing(body.bearing)
        except ValueError as exc:
            raise ValidationFailed.at(["body", "bearing"], str(exc)) from None
        fleet = FleetService(self._session)
        location = body.mounting
        await fleet.create_sensor(
            SensorCreate(
                sensor_id=body.sensor_id,
                type=WAVEFORM_SENSOR_TYPE,
                unit=body.unit,
                location=location,
                asset_id=body.asset_id,
            )
        )
        rms_id, kurtosis_id = body.sensor_id + RMS_SUFFIX, body.sensor_id + KURTOSIS_SUFFIX
        await fleet.create_sensor(
            SensorCreate(
                sensor_id=rms_id, type="acceleration", unit=body.unit, location=location, asset_id=body.asset_id
            )
        )
        await fleet.create_sensor(
            SensorCreate(sensor_id=kurtosis_id, type="kurtosis", unit="", location=location, asset_id=body.asset_id)
        )
        await self._repo.insert_config(
            {
                "sensor_id": body.sensor_id,
                "bearing": geometry.name,
                "mounting": body.mounting,
                "nominal_rpm": body.nominal_rpm,
                "band_low_hz": body.band_low_hz,
                "band_high_hz": body.band_high_hz,
                "rms_sensor_id": rms_id,
                "kurtosis_sensor_id": kurtosis_id,
            }
        )
        return await self.sensor(body.sensor_id)

    async def sensor(self, sensor_id: str) -> WaveformSensorRead:
        config = await self._repo.config(sensor_id)
        if config is None:
            raise NotFound(f"sensor {sensor_id!r} is not a registered {WAVEFORM_SENSOR_TYPE} sensor")
        return sensor_read(config)

    # --- snapshots ----------------------------------------------------------------------------------------------
    async def ingest(
        self, body: SnapshotCreate, settings: Settings, *, now: datetime | None = None
    ) -> SnapshotAccepted:
        now = now or datetime.now(UTC)
        timestamp = body.timestamp.astimezone(UTC)
        if timestamp > now + MAX_FUTURE:
            raise ValidationFailed.at(["body", "timestamp"], "timestamp: more than 5 minutes in the future")
        if timestamp < now - timedelta(days=settings.retention_days):
            raise ValidationFailed.at(
                ["body", "timestamp"], f"timestamp: older than the retention window ({settings.retention_days} days)"
            )
        sensor = await self._repo.config(body.sensor_id)
        if sensor is None:
            raise ValidationFailed.at(
                ["body", "sensor_id"],
                f"sensor {body.sensor_id!r} is not a registered {WAVEFORM_SENSOR_TYPE} sensor "
                "(register it with POST /api/v1/waveform-sensors: bearing, mounting, nominal speed)",
            )
        values = self._decode(body)
        stored = await self._repo.snapshot_at(body.sensor_id, timestamp)
        if stored is not None:
            return self._duplicate(stored)
        f = codec.features(values)
        snapshot_id = await self._repo.insert_snapshot(
            {
                "sensor_id": body.sensor_id,
                "timestamp": timestamp,
                "sample_rate_hz": body.sample_rate_hz,
                "sample_count": int(values.size),
                "rpm": body.rpm,
                "samples": codec.to_bytes(values),
                "rms": f.rms,
                "kurtosis": f.kurtosis,
                "peak": f.peak,
            }
        )
        if snapshot_id is None:  # a concurrent request stored the same snapshot first
            raced = await self._repo.snapshot_at(body.sensor_id, timestamp)
            if raced is None:  # pragma: no cover - deleted in between
                raise NotFound(f"snapshot of {body.sensor_id!r} at {timestamp.isoformat()} vanished")
            return self._duplicate(raced)
        config = sensor.config
        unit = sensor.unit
        stored_readings = await ReadingRepository(self._session).insert_many(
            [
                ReadingRow(timestamp, config.rms_sensor_id, f.rms, unit, None),
                ReadingRow(timestamp, config.kurtosis_sensor_id, f.kurtosis, "", None),
            ]
        )
        event = WaveformIngested(
            snapshot_id=snapshot_id,
            sensor_id=body.sensor_id,
            asset_id=sensor.asset_id,
            timestamp=timestamp,
            sample_count=int(values.size),
        )
        await add_to_outbox(self._session, event)
        if stored_readings:
            await add_to_outbox(
                self._session,
                ReadingsIngested(
                    sensor_ids=[config.rms_sensor_id, config.kurtosis_sensor_id],
                    count=stored_readings,
                    first_timestamp=timestamp,
                    last_timestamp=timestamp,
                    ingest_event_id=uuid.uuid4(),
                    backfill=now - timestamp > timedelta(minutes=settings.backfill_age_minutes),
                ),
            )
        await self._repo.purge_samples(
            body.sensor_id, now - timedelta(days=settings.waveform_samples_retention_days), limit=PURGE_BATCH
        )
        await self._repo.delete_snapshots(
            body.sensor_id, now - timedelta(days=settings.retention_days), limit=PURGE_BATCH
        )
        reply = SnapshotAccepted(
            snapshot_id=snapshot_id,
            sensor_id=body.sensor_id,
            timestamp=timestamp,
            sample_count=int(values.size),
            duplicate=False,
            event_id=event.event_id,
            features=SnapshotFeatures(rms=f.rms, kurtosis=f.kurtosis, peak=f.peak),
        )
        return reply

    @staticmethod
    def _decode(body: SnapshotCreate) -> NDArray[np.float32]:
        field = "samples" if body.samples is not None else "samples_base64"
        try:
            values = (
                codec.from_numbers(body.samples)
                if body.samples is not None
                else codec.from_base64(body.samples_base64 or "")
            )
            codec.check_finite(values)
        except codec.SamplesInvalid as exc:
            raise ValidationFailed.at(["body", field], str(exc)) from None
        if not MIN_SAMPLES <= values.size <= MAX_SAMPLES:
            raise ValidationFailed.at(
                ["body", field],
                f"{values.size} samples: a snapshot has {MIN_SAMPLES:,} to {MAX_SAMPLES:,} samples",
            )
        return values

    @staticmethod
    def _duplicate(stored: WaveformSnapshot) -> SnapshotAccepted:
        return SnapshotAccepted(
            snapshot_id=stored.id,
            sensor_id=stored.sensor_id,
            timestamp=stored.timestamp,
            sample_count=stored.sample_count,
            duplicate=True,
            event_id=None,
            features=SnapshotFeatures(rms=stored.rms, kurtosis=stored.kurtosis, peak=stored.peak),
        )


def diagnosis_read(row: WaveformDiagnosis) -> DiagnosisRead:
    band = row.details.get("band_hz") if isinstance(row.details, dict) else None
    return DiagnosisRead(
        id=row.id,
        snapshot_id=row.snapshot_id,
        sensor_id=row.sensor_id,
        timestamp=row.timestamp,
        fault=row.fault,
        score_db=row.score_db,
        threshold_db=row.threshold_db,
        scores_db=row.scores_db,
        defect_frequencies=row.defect_frequencies,
        bearing=row.bearing,
        rpm=row.rpm,
        band_hz=list(band) if isinstance(band, list) and len(band) == 2 else None,
        error=row.error,
        alert_id=row.alert_id,
        details=row.details,
        created_at=row.created_at,
    )


class DiagnosisQueries:
    """The read side of diagnoses: a sensor's, paged, and the latest on an alert."""

    def __init__(self, session: AsyncSession) -> None:
        self._repo = WaveformRepository(session)

    async def for_sensor(
        self, sensor_id: str, *, limit: int, offset: int, fault: str | None = None
    ) -> Page[DiagnosisRead]:
        if await self._repo.config(sensor_id) is None:
            raise NotFound(f"sensor {sensor_id!r} is not a registered {WAVEFORM_SENSOR_TYPE} sensor")
        rows, total = await self._repo.diagnoses(sensor_id, limit=limit, offset=offset, fault=fault)
        return Page[DiagnosisRead].of([diagnosis_read(r) for r in rows], total=total, limit=limit, offset=offset)

    async def for_alert(self, alert_id: int) -> DiagnosisRead:
        row = await self._repo.latest_for_alert(alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} has no diagnosis (it was not raised by the diagnosis agent)")
        return diagnosis_read(row)


__all__ = [
    "PURGE_BATCH",
    "DiagnosisQueries",
    "WaveformService",
    "defect_orders",
    "diagnosis_read",
    "sensor_read",
]
