"""No-data rules: a sensor that stops sending (``AlertingService`` companion; services flush, never commit).

The timeout of a sensor is the rule's ``no_data_minutes`` when it sets one, else ``interval_multiple`` × the
sensor's cadence (the median interval of its last readings), at least ``min_minutes``: one rule fits a sensor
sending every second and one sending every ten minutes. A sensor without a cadence yet (fewer than three
readings) is judged only by a rule with ``no_data_minutes``, from its creation when it never sent anything.

Whose clock: a sensor whose latest reading arrived live (stored within ``SM_BACKFILL_AGE_MINUTES`` of its
timestamp) is silent when the wall clock has moved past its last reading by the timeout. A sensor whose data is
history (back-filled) is judged in event time: it is silent when another sensor of its asset has readings
later than its last one by the timeout — a back-fill never makes every sensor "silent" because the wall clock
is years ahead, and a whole asset's pause in the history is a pause, not a fault. No-data rules have no
hysteresis: silence is already a duration. Alerts open at the event time silence began (last reading +
timeout) and resolve at the reading that ends it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.alerts.repository import SensorInfo, Silence
from core.alerts.service import AlertingService, EvaluationOutcome
from core.alerts.suppression import Suppression


def timeout(params: dict[str, object], silence: Silence) -> timedelta | None:
    explicit = params.get("no_data_minutes")
    if explicit is not None:
        return timedelta(minutes=float(explicit))  # type: ignore[arg-type]
    if silence.cadence_s is None:
        return None
    multiple = float(params.get("interval_multiple", 10.0))  # type: ignore[arg-type]
    minimum = float(params.get("min_minutes", 2.0))  # type: ignore[arg-type]
    return max(timedelta(seconds=multiple * silence.cadence_s), timedelta(minutes=minimum))


class NoDataService(AlertingService):
    """``AlertingService`` plus the no-data check (same unit of work, same opening and resolving steps)."""

    async def check(self, now: datetime, *, backfill_age: timedelta) -> EvaluationOutcome:
        """Open or resolve no-data alerts as of ``now`` (wall clock) for live sensors, and the asset's event time
        for back-filled ones."""
        repo = self._repo
        outcome = EvaluationOutcome()
        sensors = await repo.active_sensors()
        pairs = await repo.rules_for_sensors(sorted(sensors), ["no_data"])
        if not pairs:
            return outcome
        silences = await repo.silences(sorted(sensors))
        watermark: dict[int, datetime] = {}
        for sensor_id, silence in silences.items():
            asset = sensors[sensor_id].asset_id
            if asset is not None and silence.last_at is not None:
                watermark[asset] = max(watermark.get(asset, silence.last_at), silence.last_at)
        ids = sorted({s for _, s in pairs})
        unresolved = await repo.unresolved_alerts(ids, sorted({r.name for r, _ in pairs}))
        assets = [sensors[s].asset_id for s in ids if sensors[s].asset_id is not None]
        known = [x.last_at for x in silences.values() if x.last_at is not None]
        since = min([*known, *(sensors[s].created_at for s in ids), now])  # no silence begins before these
        windows = await repo.maintenance_windows([a for a in assets if a is not None], since, now)
        suppression = Suppression(windows)
        for rule, sensor_id in pairs:
            info = sensors[sensor_id]
            silence = silences.get(sensor_id, Silence(None, None, None))
            limit = timeout(rule.params, silence)
            if limit is None:
                continue
            reference, at, historic = _clock(info, silence, now, backfill_age, watermark)
            if at is None:
                continue
            silent = reference <= at - limit
            alert = unresolved.get((sensor_id, rule.name))
            if silent and alert is None:
                began = reference + limit
                if suppression.reason(info, began) is not None:
                    self._suppressed(outcome, rule, sensor_id, "maintenance_window", began)
                    continue
                alert_id, opened, _ = await self.open_alert(
                    rule,
                    info,
                    [],
                    f"no reading for {limit.total_seconds() / 60:g} min (last: {reference.isoformat()})",
                    event_at=began,
                    backfill=historic,
                )
                if opened:
                    outcome.opened.append(alert_id)
            elif not silent and alert is not None and await self.resolve_alert(
                alert.id, alert.incident_id, rule.name, f"data returned ({reference.isoformat()})", event_at=reference
            ):
                outcome.resolved.append(alert.id)
        return outcome


def _clock(
    info: SensorInfo,
    silence: Silence,
    now: datetime,
    backfill_age: timedelta,
    watermark: dict[int, datetime],
) -> tuple[datetime, datetime | None, bool]:
    """(the sensor's last sign of life, the clock it is judged by — None: none applies —, whether that is
    event time of history)."""
    if silence.last_at is None:
        return info.created_at, now, False
    live = silence.ingested_at is not None and silence.ingested_at - silence.last_at <= backfill_age
    if live:
        return silence.last_at, now, False
    if info.asset_id is None:
        return silence.last_at, None, True
    return silence.last_at, watermark.get(info.asset_id), True


__all__ = ["NoDataService", "timeout"]
