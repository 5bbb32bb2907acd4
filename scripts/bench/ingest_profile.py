"""Where the CPU goes during a phase of ``scripts/bench_ingest.py``: CPU seconds per process group, and optionally a
py-spy profile of every uvicorn worker.

* ``CpuMeter`` samples the CPU times of the API (uvicorn master and workers), of the PostgreSQL server processes
  (every ``postgres`` process of the machine: the benchmark's backends, but also those of anyone else using the
  server), of the client (this process and its children, e.g. wrk, but neither the API nor py-spy), of the agent
  workers and the NATS server the benchmark started (``--bus nats``) and of the whole machine, at the start and
  the end of a phase. Processes that exit during a phase lose their share
  (short-lived autovacuum workers).
* ``PySpy`` runs ``py-spy record --format raw`` on each worker for the phase (stopped with SIGINT) and
  ``summarise`` turns the collapsed stacks into the functions with the largest inclusive and own share of the
  samples. py-spy is a profiling tool, not a dependency of the project: install it where you like
  (``pip install py-spy``) and pass its path with ``--py-spy`` when it is not on PATH.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _postgres() -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            out.append(proc)
    return out


def _is_py_spy(proc: psutil.Process) -> bool:
    try:
        return "py-spy" in proc.name()
    except psutil.Error:
        return False


def _is_worker(proc: psutil.Process) -> bool:
    """An agent worker (``apps.cli worker``) or a NATS server started by the benchmark."""
    try:
        return "nats-server" in proc.name() or "worker" in proc.cmdline()[-1:]
    except psutil.Error:
        return False


def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
    times: dict[int, float] = {}
    for proc in procs:
        try:
            t = proc.cpu_times()
            times[proc.pid] = t.user + t.system
        except psutil.Error:
            continue
    return times


@dataclass
class CpuSplit:
    """CPU seconds spent during one phase, per group, and the phase's wall time."""

    wall_s: float
    api_s: float
    postgres_s: float
    client_s: float
    machine_s: float
    #: CPU time the hypervisor gave to other guests (``steal`` in /proc/stat): the machine was slower by that much
    steal_s: float = 0.0
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: Agent worker processes and the NATS server the benchmark started (``--bus nats``), not counted as client.
    workers_s: float = 0.0

    def describe(self, items: int = 0, unit: str = "") -> str:
        """The split; with ``items`` (requests or readings handled in the phase) also the API's and PostgreSQL's
        CPU per ``unit`` of them — the figure to compare between runs when other work shares the machine."""
        other = max(0.0, self.machine_s - self.api_s - self.postgres_s - self.client_s - self.workers_s)
        capacity = self.wall_s * self.cores

        def part(seconds: float) -> str:
            return f"{seconds:.0f} s ({seconds / capacity:.0%})" if capacity else f"{seconds:.0f} s"

        workers = f"workers and NATS {part(self.workers_s)}, " if self.workers_s else ""
        text = (
            f"{self.wall_s:.0f} s × {self.cores} cores: API {part(self.api_s)}, {workers}"
            f"PostgreSQL {part(self.postgres_s)}, client {part(self.client_s)}, other {part(other)}, "
            f"stolen by the hypervisor {part(self.steal_s)}, "
            f"idle {part(max(0.0, capacity - self.machine_s - self.steal_s))}"
        )
        if items:
            scale = {"request": 1, "1,000 readings": 1000}.get(unit, 1)
            per_workers = f"workers {self.workers_s * 1000 * scale / items:.2f} ms, " if self.workers_s else ""
            text += (
                f"; per {unit}: API {self.api_s * 1000 * scale / items:.2f} ms, {per_workers}"
                f"PostgreSQL {self.postgres_s * 1000 * scale / items:.2f} ms of CPU"
            )
        return text


class CpuMeter:
    """``start()`` then ``stop() -> CpuSplit`` around a phase (module docstring)."""

    def __init__(self, api_pid: int) -> None:
        self.api_pid = api_pid
        self._start: dict[str, dict[int, float]] = {}
        self._machine = 0.0
        self._steal = 0.0
        self._t0 = 0.0

    def _groups(self) -> dict[str, dict[int, float]]:
        api = _tree(self.api_pid)
        skip = {p.pid for p in api}
        mine = [p for p in _tree(os.getpid()) if p.pid not in skip and not _is_py_spy(p)]
        workers = [p for p in mine if _is_worker(p)]
        # the client: this process and its running children (wrk) but not the API (started by it), the agent
        # workers and NATS (--bus nats) nor py-spy …
        client = _cpu([p for p in mine if not _is_worker(p)])
        # … and the children it waited for (wrk once it exited; py-spy is waited for after the phase's end)
        ended = os.times()
        client[-1] = ended.children_user + ended.children_system
        return {"api": _cpu(api), "postgres": _cpu(_postgres()), "client": client, "workers": _cpu(workers)}

    @staticmethod
    def _machine_busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    def start(self) -> None:
        self._start = self._groups()
        self._machine = self._machine_busy()
        self._steal = getattr(psutil.cpu_times(), "steal", 0.0)
        self._t0 = time.perf_counter()

    def stop(self) -> CpuSplit:
        wall = time.perf_counter() - self._t0
        machine = self._machine_busy() - self._machine
        steal = getattr(psutil.cpu_times(), "steal", 0.0) - self._steal
        end = self._groups()

        def spent(group: str) -> float:
            before = self._start.get(group, {})
            return sum(t - before.get(pid, 0.0) for pid, t in end[group].items())

        return CpuSplit(
            wall, spent("api"), spent("postgres"), spent("client"), machine, steal, workers_s=spent("workers")
        )


def workers_of(api_pid: int) -> list[int]:
    """The uvicorn worker processes (the master's children running Python), or the master itself with one worker."""
    try:
        children = psutil.Process(api_pid).children()
    except psutil.NoSuchProcess:
        return []
    workers = [c.pid for c in children if "python" in c.name().lower()]
    return workers or [api_pid]


class PySpy:
    """``py-spy record`` on every worker of ``api_pid`` for one phase: ``start(phase)``, then ``stop()``."""

    def __init__(self, binary: str, out_dir: Path, api_pid: int, rate: int = 97) -> None:
        self.binary = binary
        self.out_dir = out_dir
        self.api_pid = api_pid
        self.rate = rate
        self._procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, phase: str) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for pid in workers_of(self.api_pid):
            out = self.out_dir / f"{phase}-{pid}.txt"
            cmd = [self.binary, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw",
                   "--output", str(out), "--nonblocking"]  # fmt: skip
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._procs.append((proc, out))
        time.sleep(0.5)  # py-spy attaches

    def stop(self) -> list[Path]:
        outs = []
        for proc, _out in self._procs:
            proc.send_signal(signal.SIGINT)
        for proc, out in self._procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            outs.append(out)
        self._procs = []
        return [out for out in outs if out.exists()]


def _frame_name(frame: str) -> str:
    """``function (path/to/module.py:123)`` → ``function (module.py)``: lines of one function merged."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    parts = Path(path).parts
    for anchor in ("core", "apps", "site-packages", "python3.11"):
        if anchor in parts:
            path = "/".join(parts[parts.index(anchor) + (anchor in ("site-packages", "python3.11")) :])
            break
    return f"{name} ({path})"


def summarise(files: list[Path], top: int = 40) -> str:
    """The ``top`` functions by inclusive and by own share of the samples of ``files`` (py-spy raw output)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_name(f) for f in stack.split(";")[1:]]  # the first frame is the thread
            total += count
            for name in set(frames):
                inclusive[name] += count
            if frames:
                own[frames[-1]] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "own:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


__all__ = ["CpuMeter", "CpuSplit", "PySpy", "summarise", "workers_of"]
