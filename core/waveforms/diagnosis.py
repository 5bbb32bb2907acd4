"""Diagnosing a stored snapshot, recording the result and raising the asset's alert (services flush only).

``run_diagnosis`` is the CPU part (``core.ml.vibration.diagnosis.diagnose`` on the decoded samples), run by the
agent off the event loop. ``DiagnosisService.record`` is one transaction:

1. the (sensor, ``bearing-fault``) alert key is locked (the alerting agent's advisory lock), so the decisions
   about one sensor's alert are serialised;
2. the diagnosis is inserted, unique per snapshot: a redelivered event finds it and writes nothing (the first
   delivery's transaction wrote the diagnosis and its alert together, or neither);
3. a named fault (outer race, inner race, ball) opens the sensor's ``bearing-fault`` alert through
   ``AlertingService.open_alert`` — the same path as every rule: the alert joins its asset's incident and
   ``AlertRaised`` goes to the outbox, on which the scheduling agent opens the incident's one work order. While
   that alert is unresolved, a repeated diagnosis only counts on it (one observation per snapshot: ``anomaly_count``
   is the number of faulty snapshots), so no second alert or work order. The diagnosis row carries the
   ``alert_id``: it is the alert's evidence (``GET /api/v1/alerts/{id}/diagnosis``);
   No alert opens while the snapshot lies in a maintenance window of the asset (planned downtime), as for every
   rule; the diagnosis is stored all the same;
4. ``SM_WAVEFORM_RESOLVE_AFTER`` (3) consecutive healthy diagnoses (``none``) resolve the unresolved alert
   (after a repair);
   ``unknown`` (not diagnosable, or the algorithm abstains) neither opens nor resolves anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.repository import AlertingRepository, Observation, SensorInfo
from core.alerts.rule_models import AlertRule
from core.alerts.service import DEFAULT_INCIDENT_WINDOW, AlertingService
from core.alerts.suppression import Suppression
from core.observability.metrics import ALERTS_SUPPRESSED_TOTAL
from core.waveforms import samples as codec
from core.waveforms.repository import StoredSnapshot, WaveformRepository

#: ``alerts.rule`` of the alerts the diagnosis agent raises (one unresolved per sensor).
RULE_NAME = "bearing-fault"
#: Severity of a diagnosed bearing fault: high, so that the scheduling agent opens a work order.
SEVERITY = "high"
#: Fault families that raise the alert (``none`` and ``unknown`` do not).
NAMED_FAULTS = ("outer race", "inner race", "ball")
HEALTHY = "none"
UNKNOWN = "unknown"
#: Consecutive healthy diagnoses that resolve an unresolved bearing-fault alert.
RESOLVE_AFTER = 3


def json_safe(value: Any) -> Any:
    """A JSON value: numpy scalars and arrays as Python numbers and lists, NaN/±inf as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class DiagnosisResult:
    fault: str
    rpm: float
    bearing: str
    band_hz: tuple[float, float] | None
    scores_db: dict[str, float | None] = field(default_factory=dict)
    defect_frequencies: dict[str, float | None] = field(default_factory=dict)
    threshold_db: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def score_db(self) -> float | None:
        """The named fault's score; the best candidate's when none is named."""
        if self.fault in self.scores_db:
            return self.scores_db[self.fault]
        finite = [v for v in self.scores_db.values() if v is not None]
        return max(finite) if finite else None

    @property
    def named(self) -> bool:
        return self.fault in NAMED_FAULTS


def snapshot_inputs(stored: StoredSnapshot) -> tuple[float, tuple[float, float] | None]:
    """(rpm, envelope band) of a snapshot: its own rpm, else the sensor's nominal one; the sensor's band."""
    config, snapshot = stored.sensor.config, stored.snapshot
    rpm = snapshot.rpm if snapshot.rpm is not None else config.nominal_rpm
    band = None
    if config.band_low_hz is not None and config.band_high_hz is not None:
        band = (config.band_low_hz, config.band_high_hz)
    return rpm, band


def run_diagnosis(
    raw: bytes | None, fs: float, rpm: float, bearing: str, band: tuple[float, float] | None
) -> DiagnosisResult:
    """Diagnose float32 samples (CPU-bound: run it in a worker thread). A snapshot that cannot be diagnosed
    (samples purged, band above the Nyquist frequency, ...) gives ``unknown`` with the reason in ``error``."""
    if raw is None:
        return DiagnosisResult(UNKNOWN, rpm, bearing, band, error="the snapshot's samples were purged (retention)")
    if band is not None and band[1] >= fs / 2:
        return DiagnosisResult(
            UNKNOWN, rpm, bearing, band, error=f"envelope band {band} reaches the Nyquist frequency {fs / 2:g} Hz"
        )
    from core.ml.vibration.diagnosis import diagnose  # scipy: loaded by the first snapshot, not by the API's start

    try:
        result = diagnose(codec.from_bytes(raw).astype(np.float64), fs, rpm, bearing, band=band)
    except ValueError as exc:
        return DiagnosisResult(UNKNOWN, rpm, bearing, band, error=str(exc))
    details = json_safe(result.to_dict())
    details["band_hz"] = _band_used(details.get("band"), band, fs)
    scores = {str(k): _number(v) for k, v in result.scores_db.items()}
    frequencies = {str(k): _number(v) for k, v in result.defect_frequencies.items()}
    return DiagnosisResult(
        fault=str(result.fault),
        rpm=rpm,
        bearing=bearing,
        band_hz=(details["band_hz"][0], details["band_hz"][1]),
        scores_db=scores,
        defect_frequencies=frequencies,
        threshold_db=_number(result.threshold_db),
        details=details,
    )


def _band_used(reported: Any, given: tuple[float, float] | None, fs: float) -> list[float]:
    """The envelope band the diagnosis reports (its kurtogram's choice), else the given one, else its default."""
    if isinstance(reported, list) and len(reported) == 2 and all(isinstance(v, int | float) for v in reported):
        low, high = float(reported[0]), float(reported[1])
        if 0 <= low < high:
            return [low, high]
    return list(given) if given is not None else [0.1 * fs, 0.4 * fs]


def summary(result: DiagnosisResult, snapshot_id: int) -> str:
    """One line for the alert's history: what was diagnosed, how strongly, at which defect frequencies."""
    freqs = ", ".join(
        f"{k.upper()} {v:.1f} Hz" for k, v in result.defect_frequencies.items() if v is not None and k != "ftf"
    )
    score = result.score_db
    threshold = result.threshold_db
    strength = f"{score:.1f} dB" if score is not None else "score n/a"
    if threshold is not None:
        strength += f" (threshold {threshold:.1f} dB)"
    return f"{result.fault} fault diagnosed in snapshot {snapshot_id}: {strength}; {freqs} at {result.rpm:g} rpm"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What ``record`` did."""

    diagnosis_id: int | None
    """None: the snapshot had a diagnosis already (redelivery); nothing was written."""
    alert_id: int | None = None
    alert_opened: bool = False
    alert_resolved: bool = False
    suppressed: str | None = None
    """Why a named fault opened no alert (``maintenance_window``: planned downtime of the asset)."""


class DiagnosisService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        incident_window: timedelta = DEFAULT_INCIDENT_WINDOW,
        severity: str = SEVERITY,
        resolve_after: int = RESOLVE_AFTER,
    ) -> None:
        """``incident_window``: how close in event time alerts of one asset join one incident
        (``SM_INCIDENT_WINDOW_MINUTES``, as for the alerting agent); ``severity`` of the alert a named fault raises
        (``SM_WAVEFORM_ALERT_SEVERITY``); ``resolve_after`` consecutive healthy diagnoses resolve it
        (``SM_WAVEFORM_RESOLVE_AFTER``)."""
        self._session = session
        self._severity = severity
        self._resolve_after = resolve_after
        self._repo = WaveformRepository(session)
        self._alerts = AlertingRepository(session)
        self._alerting = AlertingService(session, incident_window=incident_window)

    async def record(self, stored: StoredSnapshot, result: DiagnosisResult) -> Recorded:
        snapshot, sensor = stored.snapshot, stored.sensor
        await self._alerts.lock_alert_keys([(snapshot.sensor_id, RULE_NAME)])
        diagnosis_id = await self._repo.insert_diagnosis(
            {
                "snapshot_id": snapshot.id,
                "sensor_id": snapshot.sensor_id,
                "timestamp": snapshot.timestamp,
                "fault": result.fault,
                "score_db": result.score_db,
                "threshold_db": result.threshold_db,
                "scores_db": result.scores_db,
                "defect_frequencies": result.defect_frequencies,
                "details": result.details,
                "bearing": result.bearing,
                "rpm": result.rpm,
                "error": result.error,
            }
        )
        if diagnosis_id is None:
            return Recorded(None)
        info = SensorInfo(snapshot.sensor_id, sensor.asset_id, sensor.type, sensor.created_at, sensor.unit)
        if result.named:
            windows = await self._alerts.maintenance_windows(
                [sensor.asset_id] if sensor.asset_id is not None else [], snapshot.timestamp, snapshot.timestamp
            )
            reason = Suppression(windows).reason(info, snapshot.timestamp)
            if reason is not None:  # planned downtime: the diagnosis is kept, no alert opens (as for every rule)
                ALERTS_SUPPRESSED_TOTAL.labels(reason=reason).inc()
                return Recorded(diagnosis_id, suppressed=reason)
            opened = await self._alerting.open_alert(
                # the rule exists only here (not a row of alert_rules): open_alert uses its name and severity
                AlertRule(name=RULE_NAME, kind="diagnosis", severity=self._severity),
                info,
                [Observation(snapshot.timestamp, result.score_db)],
                summary(result, snapshot.id),
                event_at=snapshot.timestamp,
            )
            await self._repo.set_alert(diagnosis_id, opened.alert_id)
            return Recorded(diagnosis_id, opened.alert_id, alert_opened=opened.opened)
        if result.fault == HEALTHY:
            return Recorded(
                diagnosis_id, alert_resolved=await self._resolve_if_healthy(snapshot.sensor_id, snapshot.timestamp)
            )
        return Recorded(diagnosis_id)

    async def _resolve_if_healthy(self, sensor_id: str, at: datetime) -> bool:
        unresolved = (await self._alerts.unresolved_alerts([sensor_id], [RULE_NAME])).get((sensor_id, RULE_NAME))
        if unresolved is None or at < unresolved.event_opened_at:
            return False
        faults = await self._repo.latest_faults(sensor_id, at, self._resolve_after)
        if len(faults) < self._resolve_after or any(f != HEALTHY for f in faults):
            return False
        return await self._alerting.resolve_alert(
            unresolved.id,
            unresolved.incident_id,
            RULE_NAME,
            f"{self._resolve_after} consecutive healthy diagnoses",
            event_at=at,
        )


__all__ = [
    "NAMED_FAULTS",
    "RESOLVE_AFTER",
    "RULE_NAME",
    "SEVERITY",
    "DiagnosisResult",
    "DiagnosisService",
    "Recorded",
    "json_safe",
    "run_diagnosis",
    "snapshot_inputs",
    "summary",
]
