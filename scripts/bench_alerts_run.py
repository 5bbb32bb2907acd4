"""The core loop of ``make bench-alerts`` (``scripts/bench_alerts.py``): one simulated run against a fresh private
platform, judged by :mod:`core.backtest.alert_quality`.

:func:`run_phase`:

1. ``LocalPlatform`` (``apps/cli/backtest/platform.py``): embedded PostgreSQL, migrations, the API on a free loopback
   port; MLflow only when ``mlflow_uri`` answers (else the anomaly agent's statistical baseline).
2. The demo fleet seeded with ``end = start`` (``seed_demo_fleet``): 600 readings per sensor at 5 min, so every
   sensor's healthy reference is learned from that history. The seed writes readings directly (no events reach
   the agents); whatever alerts or work orders exist before the simulation are history: open work orders are
   cancelled, unresolved alerts resolved (both counted in the result).
3. The simulated span (``core.simulation.simulated``) sent with ``?backfill=true`` in time order, ``batch_s``
   simulated seconds per request. At every checkpoint — each fault's start, each fault's end + grace, the end —
   it waits until the agents settled (``GET /api/v1/admin/events`` idle for several polls) and acts as the
   technician: every open work order is completed, ``fault_confirmed`` when it belongs to an episode
   (``alert_quality.outcome_for``), ``no_fault_found`` otherwise. So every fault starts on a clean asset.
4. Alerts and work orders (with their incidents' evidence) read back and judged.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from secrets import token_hex
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from apps.cli.backtest.client import ApiError, PlatformClient
from apps.cli.backtest.platform import NO_MLFLOW, LocalPlatform, deferred_signals
from core.backtest.alert_quality import (
    AlertRow,
    Episode,
    Quality,
    WorkOrderRow,
    judge,
    late_work_orders,
    outcome_for,
)
from core.backtest.settle import SettleTracker, describe
from core.config import Settings, load_settings
from core.simulation.catalogue import DEMO_SENSORS
from core.simulation.live_faults import LIVE_FAULT_KINDS, LiveFault
from core.simulation.simulated import (
    DEFAULT_CADENCE_S,
    DEFAULT_SEED,
    FaultTiming,
    SimulatedFleet,
    fault_window,
    simulated_schedule,
)

T = TypeVar("T")
PAGE = 1000
SEED_SPAN = timedelta(hours=53)  # the generator's longest series (the dropout sensor's 636 slots of 5 min)


@dataclass(frozen=True)
class BenchConfig:
    start: datetime
    hours: float = 24.0
    cadence_s: float = DEFAULT_CADENCE_S
    timing: FaultTiming = field(default_factory=FaultTiming)
    grace_s: float = 1200.0
    seed: int = DEFAULT_SEED
    batch_s: float = 300.0
    kinds: tuple[str, ...] | None = None
    settle_timeout_s: float = 600.0
    settle_each_batch: bool = False
    """Wait for the agents after every request (a control: no request is ever ahead of the agents)."""

    @property
    def span_s(self) -> float:
        return self.hours * 3600.0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.span_s)

    def faults(self) -> list[LiveFault]:
        return simulated_schedule(
            DEMO_SENSORS, self.span_s, self.timing, kinds=self.kinds, margin_s=self.grace_s
        )

    def episodes(self) -> list[Episode]:
        grace = timedelta(seconds=self.grace_s)
        return [Episode(f.sensor_id, f.kind, *fault_window(f, self.start), grace) for f in self.faults()]

    def checkpoints(self) -> list[datetime]:
        """Each fault's start, each fault's end + grace, and the end of the span (sorted, unique)."""
        marks = {self.end}
        for e in self.episodes():
            marks |= {e.start, e.window_end}
        return sorted(m for m in marks if self.start < m <= self.end)


@dataclass
class PhaseResult:
    label: str
    quality: Quality
    alerts: list[AlertRow]
    work_orders: list[WorkOrderRow]
    outcomes: dict[int, str]
    """Work order id → the technician's outcome."""
    history: dict[str, int]
    """What the seed period left: work orders cancelled, alerts resolved before the simulation."""
    readings: int = 0
    requests: int = 0
    rejected: int = 0
    dead_letters: int = 0
    late_openings: list[str] = field(default_factory=list)
    """Alerts that opened with more matches than their rule's k (event-time consistency, information)."""
    overlaps: list[str] = field(default_factory=list)
    """Alerts of one sensor and rule whose event-time spans overlap (at most one may be unresolved at a time)."""
    late_orders: list[str] = field(default_factory=list)
    """Work orders that opened after an earlier high/critical alert of their incident."""
    uses_mlflow: bool = False
    wall_s: float = 0.0
    settle_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def default_start(now: datetime | None = None, hours: float = 24.0) -> datetime:
    """The latest UTC midnight from which ``hours`` end before ``now`` (the simulated span lies in the past, and
    always starts at the same hour of day, so runs on different days see the same daily cycle)."""
    now = now or datetime.now(UTC)
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=1)
    while start + timedelta(hours=hours) > now:
        start -= timedelta(days=1)
    return start


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


# --- the API ------------------------------------------------------------------------------------------------------
def pages(client: PlatformClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        response = client.request("GET", path, params={**params, "limit": PAGE, "offset": len(items)})
        if response.status_code != 200:
            raise ApiError(f"GET {path}: HTTP {response.status_code}: {response.text[:300]}")
        page = response.json()
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            return items


def alert_rows(items: list[dict[str, Any]]) -> list[AlertRow]:
    return [
        AlertRow(int(a["id"]), a["sensor_id"], a["rule"], a["severity"], parse(a["event_opened_at"]))
        for a in items
        if a.get("event_opened_at")
    ]


def work_order_row(item: dict[str, Any]) -> WorkOrderRow | None:
    opened = item.get("event_opened_at") or item.get("created_at")
    if not opened:
        return None
    evidence = item.get("evidence") or {}
    sensors = tuple(evidence.get("sensors") or ([item["sensor_id"]] if item.get("sensor_id") else []))
    return WorkOrderRow(int(item["id"]), parse(opened), sensors, tuple(evidence.get("rules") or ()),
                        item.get("priority") or "", tuple(evidence.get("alert_ids") or ()))  # fmt: skip


def settle(client: PlatformClient, timeout_s: float, poll_s: float = 0.2) -> float:
    tracker = SettleTracker()
    t0 = time.monotonic()
    while not tracker.observe(status := client.events_status()):
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"the agents did not settle within {timeout_s:g} s ({describe(status)})")
        time.sleep(poll_s)
    return time.monotonic() - t0


def technician(
    client: PlatformClient,
    episodes: list[Episode],
    outcomes: dict[int, str],
    completed: dict[int, datetime],
    at: datetime,
) -> int:
    """Complete every open work order (module docstring); answers how many."""
    done = 0
    for status in ("open", "in_progress"):
        for item in pages(
            client, "/api/v1/maintenance/tasks", {"status": status, "sort": "id", "order": "asc"}
        ):
            row = work_order_row(item)
            outcome = outcome_for(row, episodes) if row is not None else "no_fault_found"
            body = {"outcome": outcome, "technician": "bench-alerts",
                    "notes": f"benchmark technician at simulated {iso(at)}"}  # fmt: skip
            response = client.request("POST", f"/api/v1/maintenance/tasks/{item['id']}/complete", json=body)
            if response.status_code != 200:
                raise ApiError(
                    f"completing work order {item['id']}: HTTP {response.status_code}: {response.text[:300]}"
                )
            outcomes[int(item["id"])] = outcome
            completed[int(item["id"])] = at
            done += 1
    return done


def clear_history(client: PlatformClient) -> dict[str, int]:
    """Before the simulation: cancel open work orders and resolve unresolved alerts left by the seed period."""
    cancelled = resolved = 0
    for status in ("open", "in_progress"):
        for item in pages(
            client, "/api/v1/maintenance/tasks", {"status": status, "sort": "id", "order": "asc"}
        ):
            done = client.request(
                "PATCH", f"/api/v1/maintenance/tasks/{item['id']}", json={"status": "cancelled"}
            )
            if done.status_code != 200:
                raise ApiError(
                    f"cancelling work order {item['id']}: HTTP {done.status_code}: {done.text[:300]}"
                )
            cancelled += 1
    for status in ("open", "acknowledged"):
        for item in pages(client, "/api/v1/alerts", {"status": status, "sort": "id"}):
            done = client.request(
                "POST", f"/api/v1/alerts/{item['id']}/resolve", json={"comment": "seed history"}
            )
            if done.status_code != 200:
                raise ApiError(f"resolving alert {item['id']}: HTTP {done.status_code}: {done.text[:300]}")
            resolved += 1
    return {"work_orders_cancelled": cancelled, "alerts_resolved": resolved}


_MATCHED = re.compile(r"^(\d+) of the last (\d+) readings")
_TASK = re.compile(r"maintenance task (\d+) completed")


def _resolved_at(detail: dict[str, Any], completed_at: dict[int, datetime]) -> datetime | None:
    """When the alert resolved in event time. Completing a work order stamps ``event_resolved_at`` with the wall
    clock (``MaintenanceRepository.resolve_alert``): for those the simulated time of the completion is taken."""
    if detail.get("status") != "resolved":
        return None
    closing = next((e for e in reversed(detail.get("events", [])) if e.get("to_status") == "resolved"), {})
    task = _TASK.search(closing.get("comment") or "")
    if closing.get("actor") != "alerting" and task and int(task[1]) in completed_at:
        return completed_at[int(task[1])]
    return parse(detail["event_resolved_at"]) if detail.get("event_resolved_at") else None


def consistency(
    client: PlatformClient, alerts: list[AlertRow], completed_at: dict[int, datetime]
) -> tuple[list[str], list[str]]:
    """Two event-time checks of the alerts (``GET /api/v1/alerts/{id}``, ``GET /api/v1/alert-rules``): openings
    that counted more matches than the rule's k (a threshold or anomaly-score alert opens at its k-th match, so
    more means the readings before were evaluated after later ones), and alerts of one sensor and rule whose
    ``[event_opened_at, event_resolved_at]`` overlap."""
    rules = {r["name"]: r for r in pages(client, "/api/v1/alert-rules", {})}
    late: list[str] = []
    spans: dict[tuple[str, str], list[tuple[datetime, datetime | None, int]]] = {}
    for alert in alerts:
        detail = client.request("GET", f"/api/v1/alerts/{alert.id}").json()
        rule = rules.get(alert.rule, {})
        opening = next((e for e in detail.get("events", []) if e.get("to_status") == "open"), None)
        match = _MATCHED.match((opening or {}).get("comment") or "")
        if (
            match
            and rule.get("kind") in ("threshold", "anomaly_score")
            and int(match[1]) > rule["open_after_k"]
        ):
            late.append(f"alert {alert.id} ({alert.rule} on {alert.sensor_id}) opened at {alert.opened_at:%H:%M:%S} "
                        f"with {match[1]} of the last {match[2]} readings matching "
                        f"(k = {rule['open_after_k']})")  # fmt: skip
        spans.setdefault((alert.sensor_id, alert.rule), []).append(
            (alert.opened_at, _resolved_at(detail, completed_at), alert.id)
        )
    overlaps: list[str] = []
    for (sensor_id, rule_name), items in spans.items():
        items.sort()
        for (a_open, a_end, a_id), (b_open, _, b_id) in itertools.pairwise(items):
            if a_end is None or b_open < a_end:
                until = f"{a_end:%H:%M:%S}" if a_end else "never"
                overlaps.append(f"alerts {a_id} and {b_id} ({rule_name} on {sensor_id}): {a_id} open "
                                f"{a_open:%H:%M:%S}–{until}, {b_id} opened {b_open:%H:%M:%S}")  # fmt: skip
    return late, overlaps


async def _seed(settings: Settings, end: datetime, seed: int) -> str:
    from core.simulation.seed import seed_demo_fleet
    from scripts._bootstrap import in_unit_of_work

    report = await in_unit_of_work(settings, lambda session: seed_demo_fleet(session, end=end, seed=seed))
    return str(report)


# --- one phase ----------------------------------------------------------------------------------------------------
def run_phase(
    settings: Settings,
    config: BenchConfig,
    *,
    label: str,
    console: Console,
    mlflow_uri: str | None = None,
    while_up: Callable[[LocalPlatform], T] | None = None,
) -> tuple[PhaseResult, T | None]:
    """One run on a fresh platform; ``while_up(platform)`` runs after the measurement, before the platform stops
    (e.g. training against its database)."""
    import asyncio

    t0 = time.monotonic()
    episodes = config.episodes()
    def say(message):
        return console.print(message, markup=False, highlight=False)
    platform_settings = settings.model_copy(update={"mlflow_tracking_uri": mlflow_uri or NO_MLFLOW})
    with LocalPlatform(platform_settings, oldest=config.start - SEED_SPAN, say=say) as platform:
        db_settings = load_settings(database_url=platform.embedded.url)  # type: ignore[attr-defined]
        with deferred_signals():  # a Ctrl-C during the seed is acted on once it is stored
            seeded = asyncio.run(_seed(db_settings, config.start, config.seed))
        say("seed: " + seeded)
        client = PlatformClient(platform.url, platform.api_key, on_retry=say)
        try:
            result = _measure(client, config, episodes, label, console)
            result.uses_mlflow = platform.uses_mlflow
            result.wall_s = time.monotonic() - t0
            extra = while_up(platform) if while_up is not None else None
        finally:
            client.close()
    return result, extra


def _measure(
    client: PlatformClient, config: BenchConfig, episodes: list[Episode], label: str, console: Console
) -> PhaseResult:
    settle_s = settle(client, config.settle_timeout_s)
    dead_before = client.dead_letters_pending()
    history = clear_history(client)
    fleet = SimulatedFleet(DEMO_SENSORS, config.start, config.span_s, cadence_s=config.cadence_s,
                           seed=config.seed, faults=config.faults())  # fmt: skip
    run_id = token_hex(4)
    outcomes: dict[int, str] = {}
    completed: dict[int, datetime] = {}
    sent = requests = rejected = 0
    total = fleet.steps * len(DEMO_SENSORS)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("readings"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task(label, total=total)
        for checkpoint in config.checkpoints():
            for batch in fleet.batches(config.batch_s, until=checkpoint):
                answer = client.ingest(
                    batch, f"bench-alerts-{run_id}-{requests:06d}", f"request {requests + 1}"
                )
                requests += 1
                sent += len(batch)
                rejected += len(answer.get("rejected", []))
                progress.advance(task, len(batch))
                if config.settle_each_batch:
                    settle_s += settle(client, config.settle_timeout_s)
            progress.update(task, description=f"{label}: settling at {checkpoint:%H:%M}")
            settle_s += settle(client, config.settle_timeout_s)
            technician(client, episodes, outcomes, completed, checkpoint)
            progress.update(task, description=f"{label}: {checkpoint:%H:%M}, {len(outcomes)} work orders")
    settle_s += settle(client, config.settle_timeout_s)
    alerts = alert_rows(pages(client, "/api/v1/alerts", {"sort": "id"}))
    orders = [
        row
        for item in pages(client, "/api/v1/maintenance/tasks", {"sort": "id", "order": "asc"})
        if (row := work_order_row(item)) is not None
    ]
    late, overlaps = consistency(
        client, [a for a in alerts if config.start < a.opened_at <= config.end], completed
    )
    in_span = [w for w in orders if config.start < w.opened_at <= config.end]
    kinds = [k for k in LIVE_FAULT_KINDS if any(e.kind == k for e in episodes)]
    quality = judge(episodes, alerts, orders, sensors=[s.sensor_id for s in DEMO_SENSORS],
                    start=config.start, end=config.end, kinds=kinds)  # fmt: skip
    return PhaseResult(
        label=label, quality=quality, alerts=alerts, work_orders=orders, outcomes=outcomes, history=history,
        readings=sent, requests=requests, rejected=rejected,
        dead_letters=client.dead_letters_pending() - dead_before, settle_s=settle_s, late_openings=late,
        overlaps=overlaps, late_orders=[
            f"work order {w.id} opened at {w.opened_at:%H:%M:%S} (event time), but alert {a.id} ({a.rule}, "
            f"{a.severity}, {a.sensor_id}) of its incident opened at {a.opened_at:%H:%M:%S}, "
            f"{(w.opened_at - a.opened_at).total_seconds() / 60:.1f} min earlier"
            for w, a in late_work_orders(in_span, alerts)
        ],
    )  # fmt: skip


__all__ = ["BenchConfig", "PhaseResult", "default_start", "run_phase"]
