"""One back-test run: read and plan the file, then against a platform (private or ``--api-url``): set up the
fleet, replay the rows in time order, wait until the agents settled, read the results back, write the report.

Exit status: 0 done; 1 the platform failed (could not start, refused a batch, did not settle in time); 2 the
command line, the file or the existing fleet does not fit (a one-line message says which).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from secrets import token_hex
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from apps.cli.backtest.client import ApiError, PlatformClient, SetupConflict
from apps.cli.backtest.render import render_report
from core.backtest.frame import ReplayFrame, batches, check_batch_size, load_frame, read_header
from core.backtest.plot import plot_backtest
from core.backtest.report import build_report, missing_fields
from core.backtest.settle import SettleTracker, describe
from core.backtest.specs import (
    BacktestInputError,
    asset_regex,
    compile_regex,
    parse_end,
    parse_type_spec,
    plan_sensors,
    select_columns,
    unknown_types,
    zone,
)

SHOWN_REJECTIONS = 10


@dataclass
class Options:
    csv: Path
    time_column: str
    columns: str
    asset_pattern: str
    sensor_types: list[str]
    report: Path
    end: str | None = None
    timezone: str = "UTC"
    api_url: str | None = None
    api_key: str | None = None
    batch_size: int = 10_000
    plot: Path | None = None
    settle_timeout_s: float = 600.0
    poll_interval_s: float = 0.5


class SettleTimeout(RuntimeError):
    pass


@dataclass
class ReplayCounts:
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


def prepare(options: Options) -> ReplayFrame:
    """Everything that needs only the command line and the file (``BacktestInputError`` on any problem)."""
    tz = zone(options.timezone)
    columns_rx = compile_regex(options.columns, "--columns")
    assets_rx = asset_regex(options.asset_pattern)
    specs = [parse_type_spec(s) for s in options.sensor_types]
    end = parse_end(options.end, tz) if options.end else None
    report_dir = options.report.expanduser().resolve().parent
    if not report_dir.is_dir():
        raise BacktestInputError(f"--report {options.report}: the directory {report_dir} does not exist")
    header = read_header(options.csv)
    plans = plan_sensors(select_columns(header, columns_rx, options.time_column), assets_rx, specs)
    frame = load_frame(options.csv, time_column=options.time_column, sensors=plans, tz=tz, end=end)
    if frame.readings == 0:
        raise BacktestInputError(f"{options.csv}: no reading to replay (every selected cell is empty)")
    check_batch_size(options.batch_size, len(frame.sensors))
    return frame


class Run:
    def __init__(self, options: Options, frame: ReplayFrame, console: Console) -> None:
        self.options = options
        self.frame = frame
        self.console = console
        self.run_id = token_hex(6)

    def say(self, message: str, style: str | None = None) -> None:
        """Print a line as it is (file names, regexes and API messages may contain rich markup characters)."""
        self.console.print(message, style=style, markup=False, highlight=False)

    # -- steps --------------------------------------------------------------------------------------------------
    def execute(self, client: PlatformClient) -> dict[str, Any]:
        t0 = time.monotonic()
        client.events_status()  # reachable, key with the admin scope, recent enough
        dead_before = client.dead_letters_pending()
        asset_ids = self.set_up(client)
        counts = self.replay(client)
        replayed_s = time.monotonic() - t0
        self.settle(client)
        settled_s = time.monotonic() - t0
        report, missing = self.collect(client, asset_ids)
        new_dead = client.dead_letters_pending() - dead_before
        report["replay"] = {
            "file": str(self.options.csv),
            "start": report_start(self.frame),
            **self.frame.summary(),
            "requests": counts.requests,
            "accepted": counts.accepted,
            "duplicates": counts.duplicates,
            "rejected": counts.rejected,
            "dead_letters": new_dead,
            "replay_seconds": round(replayed_s, 1),
            "settle_seconds": round(settled_s - replayed_s, 1),
        }
        self.options.report.write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        render_report(self.console, report)
        if missing:
            self.say(
                "the API does not send "
                + ", ".join(missing)
                + ": first alert / work-order times are null and "
                "the replay window is not checked for those items",
                style="yellow",
            )
        if new_dead:
            self.say(
                f"{new_dead} new dead letter(s): some agent deliveries failed (GET /api/v1/admin/dead-letters); "
                "the results may be incomplete",
                style="yellow",
            )
        totals = {k: sum(s[k] for s in report["sensors"].values()) for k in ("anomalies", "alerts")}
        self.say(f"report written to {self.options.report}")
        print(
            f"BACKTEST rows={self.frame.rows} readings={self.frame.readings} accepted={counts.accepted} "
            f"duplicates={counts.duplicates} rejected={counts.rejected} anomalies={totals['anomalies']} "
            f"alerts={totals['alerts']} work_orders={len(report['work_orders'])} "
            f"seconds={time.monotonic() - t0:.1f}",
            flush=True,
        )
        return report

    def set_up(self, client: PlatformClient) -> dict[str, int]:
        assets = sorted({p.asset for p in self.frame.sensors})
        asset_ids = client.ensure_assets(assets)
        existing = client.ensure_sensors(self.frame.sensors, asset_ids)
        unknown = unknown_types(p.type for p in self.frame.sensors)
        note = f", {existing} already registered" if existing else ""
        self.say(f"fleet: {len(assets)} asset(s), {len(self.frame.sensors)} sensor(s){note}")
        if unknown:
            self.say(
                f"types not in the catalogue (no default rule, default floors): {', '.join(unknown)}",
                "yellow",
            )
        return asset_ids

    def replay(self, client: PlatformClient) -> ReplayCounts:
        counts = ReplayCounts()
        frame = self.frame
        self.say(
            f"replaying {frame.rows} rows ({frame.readings} readings, {frame.empty_cells} empty cells"
            + (f", {frame.nonfinite_cells} non-finite" if frame.nonfinite_cells else "")
            + (f"; {frame.rows_after_end} rows after --end left out" if frame.rows_after_end else "")
            + f") from {report_start(frame)} to {frame.end.isoformat()}"
        )
        with Progress(
            TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("readings"), TimeElapsedColumn(),
            console=self.console, transient=False,
        ) as progress:  # fmt: skip
            task = progress.add_task("replay", total=frame.readings)
            for batch in batches(frame, self.options.batch_size):
                what = (
                    f"batch {batch.index + 1} (rows {batch.first_row + 1}-{batch.last_row + 1} in time order)"
                )
                answer = client.ingest(batch.readings, f"backtest-{self.run_id}-{batch.index:06d}", what)
                counts.requests += 1
                counts.accepted += int(answer.get("accepted", 0))
                counts.duplicates += int(answer.get("duplicates", 0))
                for item in answer.get("rejected", []):
                    counts.rejected += 1
                    reading = (
                        batch.readings[item["index"]] if 0 <= item["index"] < len(batch.readings) else {}
                    )
                    counts.reasons[item["reason"]] += 1
                    if counts.rejected <= SHOWN_REJECTIONS:
                        progress.console.print(
                            f"rejected {reading.get('sensor_id')} at {reading.get('timestamp')}: {item['reason']}",
                            style="yellow", markup=False, highlight=False,
                        )  # fmt: skip
                progress.advance(task, len(batch.readings))
        self.say(
            f"replayed in {counts.requests} request(s): {counts.accepted} accepted, {counts.duplicates} duplicates, "
            f"{counts.rejected} rejected"
        )
        if counts.rejected:
            self.say(
                "rejections by reason: " + "; ".join(f"{r}: {n}" for r, n in counts.reasons.most_common())
            )
        return counts

    def settle(self, client: PlatformClient) -> None:
        """Poll ``GET /api/v1/admin/events`` until idle held for several polls (``core.backtest.settle``)."""
        tracker = SettleTracker()
        t0 = time.monotonic()
        deadline = t0 + self.options.settle_timeout_s
        status: dict[str, Any] = {}
        with self.console.status("waiting for the agents") as spinner:
            while True:
                status = client.events_status()
                if tracker.observe(status):
                    break
                if time.monotonic() >= deadline:
                    raise SettleTimeout(
                        f"the agents did not settle within {self.options.settle_timeout_s:g} s "
                        f"(last answer: {describe(status)})"
                    )
                spinner.update(f"waiting for the agents: {describe(status)} ({time.monotonic() - t0:.0f} s)")
                time.sleep(self.options.poll_interval_s)
        self.say(f"agents settled ({time.monotonic() - t0:.1f} s, {tracker.polls} polls)")

    def collect(self, client: PlatformClient, asset_ids: dict[str, int]) -> tuple[dict[str, Any], list[str]]:
        frame = self.frame
        start = frame.start
        assert start is not None
        sensors = {p.sensor_id: p.asset for p in frame.sensors}
        with self.console.status("reading the results"):
            anomalies = {s: client.first_anomalies(s, start, frame.end) for s in sensors}
            alerts = [a for s in sensors for a in client.alerts(s)]
            orders = [t for asset_id in sorted(set(asset_ids.values())) for t in client.work_orders(asset_id)]
            if self.options.plot is not None:
                every = {s: client.anomalies(s, start, frame.end) for s in sensors}
                plot_backtest(frame, every, alerts, orders, self.options.plot, title=self.options.csv.name)
                self.say(f"plot written to {self.options.plot}")
        report = build_report(
            end=frame.end,
            start=start,
            sensors=sensors,
            anomalies=anomalies,
            alerts=alerts,
            work_orders=orders,
            asset_names={i: n for n, i in asset_ids.items()},
        )
        return report, missing_fields(alerts, orders)


def report_start(frame: ReplayFrame) -> str | None:
    return frame.start.isoformat() if frame.start else None


def oldest(frame: ReplayFrame) -> datetime:
    assert frame.start is not None
    return frame.start


__all__ = ["ApiError", "Options", "Run", "SettleTimeout", "SetupConflict", "oldest", "prepare"]
