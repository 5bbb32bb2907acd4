"""Vibration waveforms: register a ``vibration_waveform`` sensor (scope ``admin``), send snapshots (scope
``ingest``), read diagnoses (scope ``read``). HTTP concerns only; logic in ``core.waveforms``.

Snapshots stay out of the readings' ingest path: their own route, one snapshot per request, a JSON body bounded
by ``SM_MAX_REQUEST_BODY_BYTES`` (the request gate refuses a larger one with 413 before reading it) and by
``MAX_SAMPLES`` samples. The request gate authenticates and rate-limits them like every route with a key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from apps.api.deps import SessionDep, SettingsDep
from apps.api.errors import problem_responses
from apps.api.params import AlertIdPath, Limit, Offset, SensorIdPath
from apps.api.security import AdminPrincipal, IngestPrincipal, ReadPrincipal
from core.ml.vibration.bearings import BEARINGS
from core.paging import Page
from core.waveforms.schemas import (
    MAX_SAMPLES,
    MIN_SAMPLES,
    BearingRead,
    DiagnosisRead,
    SnapshotAccepted,
    SnapshotCreate,
    WaveformSensorCreate,
    WaveformSensorRead,
)
from core.waveforms.service import DiagnosisQueries, WaveformService, defect_orders

router = APIRouter(tags=["waveforms"], responses=problem_responses(401, 403, 429))

FaultQuery = Annotated[
    str | None,
    Query(
        pattern=r"^(outer race|inner race|ball|none|unknown)$",
        description="Only diagnoses naming this fault.",
    ),
]


@router.post(
    "/api/v1/waveform-sensors",
    status_code=status.HTTP_201_CREATED,
    response_model=WaveformSensorRead,
    summary="Register a vibration_waveform sensor",
    description=(
        "Creates the sensor (type `vibration_waveform`) on its asset with its bearing geometry, mounting and "
        "nominal shaft speed, and its two feature sensors `<sensor_id>.rms` (type `acceleration`) and "
        "`<sensor_id>.kurtosis` (type `kurtosis`), whose readings every snapshot adds. A taken id is a 409; an "
        "unknown asset or bearing a 422."
    ),
    responses=problem_responses(409, 422),
)
async def register_waveform_sensor(
    body: WaveformSensorCreate, principal: AdminPrincipal, session: SessionDep
) -> WaveformSensorRead:
    created = await WaveformService(session).register(body)
    principal.audit("waveform_sensor.create", target=f"sensor:{body.sensor_id}", asset_id=body.asset_id)
    return created


@router.get(
    "/api/v1/waveform-sensors/bearings",
    response_model=list[BearingRead],
    summary="Bearing geometries a waveform sensor can name",
)
async def list_bearings(principal: ReadPrincipal) -> list[BearingRead]:
    aliases: dict[str, list[str]] = {}
    geometries = {}
    for alias, geometry in BEARINGS.items():
        aliases.setdefault(geometry.name, []).append(alias)
        geometries[geometry.name] = geometry
    return [
        BearingRead(
            name=name,
            aliases=sorted(aliases[name]),
            n_elements=g.n_elements,
            element_diameter=g.element_diameter,
            pitch_diameter=g.pitch_diameter,
            contact_angle_deg=g.contact_angle_deg,
            defect_orders=defect_orders(g),
        )
        for name, g in sorted(geometries.items())
    ]


@router.get(
    "/api/v1/waveform-sensors/{sensor_id}",
    response_model=WaveformSensorRead,
    summary="Get a waveform sensor's configuration",
    responses=problem_responses(404, 422),
)
async def get_waveform_sensor(
    sensor_id: SensorIdPath, principal: ReadPrincipal, session: SessionDep
) -> WaveformSensorRead:
    return await WaveformService(session).sensor(sensor_id)


@router.post(
    "/api/v1/data/waveforms",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SnapshotAccepted,
    summary="Send one vibration snapshot",
    description=(
        f"One waveform of a registered `vibration_waveform` sensor: `sample_rate_hz`, optional `rpm` (default the "
        f"sensor's nominal speed) and {MIN_SAMPLES:,}-{MAX_SAMPLES:,} samples, as a JSON array (`samples`) or "
        "base64 of little-endian float32 (`samples_base64`, about 3× smaller). 202: stored, its RMS and kurtosis "
        "added as readings of the feature sensors and the diagnosis agent notified (`event_id`); or, with "
        "`duplicate: true` and no `event_id`, a snapshot of the sensor at this timestamp was stored already and "
        "nothing changed. 422: invalid samples, "
        "timestamp (more than 5 min ahead, older than the retention) or an unregistered sensor. 413: the body is "
        "larger than `SM_MAX_REQUEST_BODY_BYTES`."
    ),
    responses=problem_responses(413, 422),
)
async def ingest_waveform(
    body: SnapshotCreate,
    principal: IngestPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> SnapshotAccepted:
    return await WaveformService(session).ingest(body, settings)


@router.get(
    "/api/v1/sensors/{sensor_id}/diagnoses",
    response_model=Page[DiagnosisRead],
    summary="A waveform sensor's diagnoses, newest first",
    responses=problem_responses(404, 422),
)
async def list_diagnoses(
    sensor_id: SensorIdPath,
    principal: ReadPrincipal,
    session: SessionDep,
    fault: FaultQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[DiagnosisRead]:
    return await DiagnosisQueries(session).for_sensor(sensor_id, limit=limit, offset=offset, fault=fault)


@router.get(
    "/api/v1/alerts/{alert_id}/diagnosis",
    response_model=DiagnosisRead,
    summary="The latest diagnosis behind an alert (its evidence)",
    description="404 when the alert has none (it was not raised by the diagnosis agent).",
    responses=problem_responses(404, 422),
)
async def alert_diagnosis(alert_id: AlertIdPath, principal: ReadPrincipal, session: SessionDep) -> DiagnosisRead:
    return await DiagnosisQueries(session).for_alert(alert_id)
