"""The core loop of ``make bench-alerts`` on a short span: 2 simulated hours with one spike fault, against a
private platform (embedded PostgreSQL + migrations + API, removed afterwards); the fault must raise an alert on
its sensor, the technician must have closed every work order, and the report must have its parts."""

from __future__ import annotations

import io
import os
from pathlib import Path

from rich.console import Console

from apps.cli.backtest.platform import LocalPlatform
from core.backtest.alert_quality import outcome_for
from core.config import load_settings
from core.simulation.simulated import FaultTiming
from scripts.bench_alerts_report import Environment, print_tables, write_report
from scripts.bench_alerts_run import BenchConfig, default_start, run_phase


def test_one_spike_in_two_simulated_hours(tmp_path: Path) -> None:
    config = BenchConfig(
        start=default_start(hours=2), hours=2.0, timing=FaultTiming(1800.0, 5400.0, 1800.0), kinds=("spike",)
    )
    [episode] = config.episodes()
    assert (episode.sensor_id, episode.kind) == ("sensor-006", "spike")
    out = io.StringIO()
    console = Console(file=out, width=200)

    def root(platform: LocalPlatform) -> Path:
        return platform.root

    result, platform_root = run_phase(
        load_settings(), config, label="baseline", console=console, while_up=root
    )

    assert platform_root is not None and not platform_root.exists()  # stopped and removed
    assert (result.readings, result.requests, result.rejected, result.dead_letters) == (720 * 15, 24, 0, 0)
    assert result.history == {"work_orders_cancelled": 0, "alerts_resolved": 0}
    [outcome] = result.quality.episodes
    assert outcome.detected, result.alerts
    assert {a.sensor_id for a in outcome.alerts} == {"sensor-006"}
    assert all(episode.start <= a.opened_at <= episode.window_end for a in outcome.alerts)
    spike = result.quality.classes["spike"]
    assert (spike.injected, spike.detected) == (1, 1)
    # the technician completed every work order of the span, with the outcome the attribution gives it
    in_span = [w for w in result.work_orders if config.start < w.opened_at <= config.end]
    assert result.outcomes == {w.id: outcome_for(w, [episode]) for w in in_span}

    print_tables(console, [result], None)
    assert "work orders per episode" in out.getvalue() and "false work orders" in out.getvalue()
    report = tmp_path / "alert_quality.md"
    write_report(report, config, [result], None, Environment.measure(os.getloadavg(), 1.0))
    text = report.read_text()
    for part in ("# Alert quality", "## Result", "| spike | 1 / 1 |", "### baseline: episodes", "sensor-006",
                 "![Episodes, alerts and work orders per sensor](alert_quality.png)"):  # fmt: skip
        assert part in text, part
    assert report.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a rerun keeps what follows the findings heading
    report.write_text(text + "\n## Findings\n\nkept\n")
    write_report(report, config, [result], None, Environment.measure(os.getloadavg(), 1.0))
    assert report.read_text().endswith("## Findings\n\nkept\n")
