"""Alert-quality benchmark (``make bench-alerts``): does a real fault become one timely work order, and does a
healthy machine stay quiet?

Two phases on the same simulated day (same start, seed, cadence and fault schedule), each on a fresh private
platform (``scripts/bench_alerts_run.py``):

1. **baseline** — no MLflow: the anomaly agent scores with its streaming ``robust_z`` baseline;
2. **after train-anomaly** — a fresh MLflow tracking server on a temporary store (``python -m apps.cli
   serve-mlflow`` with ``SM_MLFLOW_*``), notebook 02 run against it exactly as ``make train-anomaly`` does
   (``python -m apps.cli notebook 02_anomaly_isolation_forest.ipynb -p tracking_uri=…``, plots to a temporary
   directory; work-order labels from the first phase's database, still up), which registers ``anomaly_<type>``
   and promotes a version to ``champion`` only if it beats what serves; then a fresh platform whose API uses
   that MLflow.

It prints both tables side by side and writes the report (``--output``, the plot next to it). Only loopback
traffic; every process and temporary directory is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated

with contextlib.suppress(ImportError):  # imported as scripts.bench_alerts
    import _bootstrap  # noqa: F401  (run by path)

import httpx
import typer
from rich.console import Console

from apps.cli.backtest.platform import LocalPlatform, deferred_signals, free_port, tail
from apps.cli.commands import cli
from apps.cli.stack_support import stop_group
from core.config import PROJECT_ROOT, Settings, load_settings
from core.simulation.simulated import FaultTiming
from scripts.bench_alerts_report import Environment, print_tables, write_report
from scripts.bench_alerts_run import BenchConfig, PhaseResult, default_start, parse, run_phase

console = Console(highlight=False)
NOTEBOOK = "02_anomaly_isolation_forest.ipynb"
SENSOR_TYPES = ("temperature", "vibration", "pressure", "humidity", "voltage")
MLFLOW_TIMEOUT_S = 240.0


@dataclass
class Training:
    command: str
    tracking_uri: str
    wall_s: float = 0.0
    labels_note: str = ""
    champions: dict[str, str] = field(default_factory=dict)
    """Sensor type → champion version."""
    decisions: dict[str, str] = field(default_factory=dict)
    """Sensor type → the promotion reason of its newest version."""
    labels_used: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Sensor type → work-order labels the promotion used / could not use (outside the evaluated readings)."""


def launch_mlflow(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m apps.cli serve-mlflow`` on a free loopback port with its store under ``root`` (own session)."""
    port = free_port()
    env = {**os.environ, "SM_MLFLOW_HOST": "127.0.0.1", "SM_MLFLOW_PORT": str(port), "SM_MLFLOW_WORKERS": "1",
           "SM_MLFLOW_BACKEND_STORE_URI": f"sqlite:///{root / 'mlflow.db'}",
           "SM_MLFLOW_ARTIFACTS_DESTINATION": str(root / "artifacts"), "SM_DATA_DIR": str(root)}  # fmt: skip
    with (root / "mlflow.log").open("ab") as out:
        proc = subprocess.Popen(cli("serve-mlflow"), env=env, cwd=PROJECT_ROOT, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


def wait_for_mlflow(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + MLFLOW_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"MLflow exited with code {proc.returncode}:\n{tail(log)}")
        try:
            if httpx.get(url + "/health", timeout=2.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"MLflow did not answer within {MLFLOW_TIMEOUT_S:.0f} s:\n{tail(log)}")


def _quietly(stop: Callable[..., object], *args: object, **kwargs: object) -> Callable[[], None]:
    """A clean-up step that a second Ctrl-C does not cut short."""

    def run() -> None:
        with deferred_signals(reraise=False):
            stop(*args, **kwargs)

    return run


def train(platform: LocalPlatform, tracking_uri: str, plots: Path) -> Training:
    """Notebook 02 against ``tracking_uri``, labels from ``platform``'s database; then the registry's state."""
    params = ["-p", f"tracking_uri={tracking_uri}", "-p", f"output_dir={plots}"]
    command = " ".join(["python -m apps.cli notebook", NOTEBOOK, *params])
    training = Training(command=command, tracking_uri=tracking_uri)
    env = {**os.environ, "DATABASE_URL": platform.embedded.url}  # type: ignore[attr-defined]
    console.print(f"training: {command}")
    t0 = time.monotonic()
    log = plots.parent / "notebook.log"
    with log.open("ab") as out, deferred_signals():  # its own session: stopped with its kernel on Ctrl-C
        proc = subprocess.Popen(cli("notebook", NOTEBOOK, *params), env=env, cwd=PROJECT_ROOT, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        code = proc.wait()
    except BaseException:
        _quietly(stop_group, proc)()
        raise
    training.wall_s = time.monotonic() - t0
    if code != 0:
        raise RuntimeError(f"notebook 02 failed (exit {code}):\n{tail(log, 40)}")
    training.labels_note = labels_note(PROJECT_ROOT / "notebooks" / "output" / NOTEBOOK)
    registry(training)
    console.print(
        f"trained in {training.wall_s:.0f} s; {training.labels_note}; champions: "
        + (", ".join(f"{t} v{v}" for t, v in training.champions.items()) or "none")
    )
    return training


def labels_note(executed: Path) -> str:
    """What the notebook printed about the work-order labels (its data cell)."""
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return "labels: unknown (no executed notebook)"
    for cell in cells:
        if "labels_note" in "".join(cell.get("source", [])):
            text = "".join(
                "".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("name") == "stdout"
            )
            lines = [line for line in text.splitlines() if "label" in line]
            return lines[-1] if lines else "labels: not reported"
    return "labels: not reported"


def registry(training: Training) -> None:
    """Champion versions and the newest version's promotion reason per type (MLflow REST, loopback)."""
    base = training.tracking_uri.rstrip("/") + "/api/2.0/mlflow"
    with httpx.Client(timeout=30.0, trust_env=False) as http:
        for sensor_type in SENSOR_TYPES:
            name = f"anomaly_{sensor_type}"
            found = http.get(f"{base}/registered-models/get", params={"name": name})
            if found.status_code != 200:
                continue
            aliases = {a["alias"]: a["version"] for a in found.json()["registered_model"].get("aliases", [])}
            if "champion" in aliases:
                training.champions[sensor_type] = aliases["champion"]
            versions = http.get(f"{base}/model-versions/search", params={"filter": f"name='{name}'"}).json()
            newest = max(versions.get("model_versions", []), key=lambda v: int(v["version"]), default=None)
            if newest is not None:
                tags = {t["key"]: t["value"] for t in newest.get("tags", [])}
                training.decisions[sensor_type] = (
                    f"v{newest['version']}: {tags.get('sm.promotion.reason', '-')}"
                )
        experiment = http.get(f"{base}/experiments/get-by-name", params={"experiment_name": "anomaly"})
        if experiment.status_code != 200:
            return
        found = http.post(
            f"{base}/runs/search",
            json={"experiment_ids": [experiment.json()["experiment"]["experiment_id"]], "max_results": 100},
        )
        for run in found.json().get("runs", []):
            metrics = {m["key"]: m["value"] for m in run.get("data", {}).get("metrics", [])}
            for sensor_type in SENSOR_TYPES:
                used = metrics.get(f"{sensor_type}.promotion_labels_used")
                if used is not None:
                    unused = metrics.get(f"{sensor_type}.promotion_labels_unused", 0)
                    training.labels_used[sensor_type] = (int(used), int(unused))


def main(
    hours: Annotated[float, typer.Option(min=2.0, help="simulated hours")] = 24.0,
    cadence: Annotated[float, typer.Option(min=1.0, help="seconds between two readings of a sensor")] = 10.0,
    first_fault: Annotated[float, typer.Option(help="minutes before the first fault")] = 60.0,
    fault_every: Annotated[float, typer.Option(help="minutes between two fault starts")] = 90.0,
    fault_duration: Annotated[float, typer.Option(help="minutes a fault lasts")] = 30.0,
    grace: Annotated[float, typer.Option(help="minutes after a fault's end that still belong to it")] = 20.0,
    batch: Annotated[float, typer.Option(min=0.1, help="simulated minutes per ingest request")] = 5.0,
    seed: Annotated[int, typer.Option(help="random seed of the demo fleet and the physics")] = 42,
    start: Annotated[
        str | None, typer.Option(help="simulated start, ISO 8601 UTC (default: a past midnight)")
    ] = None,
    settle_each_batch: Annotated[
        bool,
        typer.Option(help="control run: wait for the agents after every request, not only at checkpoints"),
    ] = False,
    train_models: Annotated[bool, typer.Option("--train/--no-train", help="run the second phase")] = True,
    output: Annotated[
        Path | None, typer.Option(help="write the report (markdown; the plot next to it)")
    ] = None,
) -> None:
    load_before = os.getloadavg()
    t0 = time.monotonic()
    begin = parse(start) if start else default_start(hours=hours)
    config = BenchConfig(
        start=begin, hours=hours, cadence_s=cadence, grace_s=grace * 60, seed=seed, batch_s=batch * 60,
        timing=FaultTiming(first_fault * 60, fault_every * 60, fault_duration * 60),
        settle_each_batch=settle_each_batch,
    )  # fmt: skip
    settings = load_settings()
    episodes = config.episodes()
    console.print(f"simulated {begin:%Y-%m-%d %H:%M} UTC + {hours:g} h, one reading every {cadence:g} s per sensor, "
                  f"{len(episodes)} faults, grace {grace:g} min")  # fmt: skip
    try:
        results, training = phases(config, settings, train_models)
    except KeyboardInterrupt:  # the platforms, MLflow and the temporary directory were stopped and removed
        console.print("interrupted: every process started was stopped and the temporary files removed")
        raise typer.Exit(130) from None
    environment = Environment.measure(load_before, time.monotonic() - t0)
    print_tables(console, results, training)
    if output is not None:
        write_report(output, config, results, training, environment)
        console.print(f"report written to {output} (plot {output.with_suffix('.png')})")
    console.print(f"wall time {timedelta(seconds=round(time.monotonic() - t0))}")


def phases(
    config: BenchConfig, settings: Settings, train_models: bool
) -> tuple[list[PhaseResult], Training | None]:
    """The baseline phase (training at its end, against its database) and, with training, the second phase."""
    results = []
    training: Training | None = None
    with ExitStack() as stack:
        with deferred_signals():
            temp = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
            stack.callback(_quietly(shutil.rmtree, temp, ignore_errors=True))
        mlflow_url = None
        if train_models:
            with deferred_signals():
                proc, mlflow_url = launch_mlflow(temp)
                stack.callback(_quietly(stop_group, proc))
            wait_for_mlflow(proc, mlflow_url, temp / "mlflow.log")
            console.print(f"MLflow on {mlflow_url} (store in {temp})")

        def after(platform: LocalPlatform) -> Training | None:
            return train(platform, mlflow_url, temp / "plots") if mlflow_url else None

        baseline, training = run_phase(settings, config, label="baseline", console=console, while_up=after)
        results.append(baseline)
        if training is not None:
            trained, _ = run_phase(settings, config, label="after train-anomaly", console=console,
                                   mlflow_uri=mlflow_url)  # fmt: skip
            results.append(trained)
    return results, training


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    typer.run(main)
