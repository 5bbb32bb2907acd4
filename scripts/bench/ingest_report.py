"""The report of ``scripts/bench_ingest.py``: the measured results, the markdown table and the report file with one
section per kind of server (``make bench-ingest`` writes docs/benchmarks/ingest.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.ingest_profile import CpuSplit

METHOD = """\
Produced by `make bench-ingest` (`scripts/bench_ingest.py`) in one run: a fresh database migrated with
`alembic upgrade head`, the API started with `python -m apps.cli serve-api` on 127.0.0.1 (rate limit off, log
level WARNING), then (d) single-reading POSTs by 64 connections for 20 s after a 3 s warm-up that is not
counted (wrk, a C load generator, with `scripts/bench/single_reading.lua`), then (a) 1,000,000 readings in
batches of 1,000 by 8 aiohttp clients, then, with the API stopped, (b) a raw asyncpg `copy_records_to_table` of
the same rows into the same table (after deleting them). Only 2xx answers count; stored rows are counted in the
database afterwards and must match (a: exactly; d: up to one in-flight request per connection more). Peak RSS
sums the uvicorn master and its workers; it is sampled until the agents have handled every event of (a) (the
outbox empty: "caught up"). The CPU of the API, PostgreSQL, the client and everything else on the machine is
counted per phase (`scripts/bench/ingest_profile.py`), with the API's and PostgreSQL's CPU per request or per
1,000 readings. Client, API and PostgreSQL share the machine. The machine is noisy (other work, the hypervisor):
repeated runs of (d) on it gave p99 from 35 to 71 ms; compare figures within one run, and the CPU per item
between runs."""


@dataclass
class Results:
    batch_readings: int = 0
    batch_seconds: float = 0.0
    batch_errors: dict[int, int] = field(default_factory=dict)
    stored: int = 0
    copy_rows: int = 0
    copy_seconds: float = 0.0
    single_ok: int = 0
    single_errors: dict[int | str, int] = field(default_factory=dict)
    single_seconds: float = 0.0
    single_stored: int = 0
    single_p50_ms: float = float("nan")
    single_p99_ms: float = float("nan")
    single_client: str = "aiohttp"
    peak_rss_mb: float = 0.0
    workers: int = 1
    cpu: dict[str, CpuSplit] = field(default_factory=dict)
    #: Seconds from the last answered batch of (a) until every outbox event was handled (None: not within the limit)
    catch_up_s: float | None = None


def report(res: Results, n: int, server_version: str, machine: str) -> str:
    """The measured table; ``server_version`` names PostgreSQL (and TimescaleDB when installed)."""
    a = res.batch_readings / res.batch_seconds if res.batch_seconds else 0.0
    b = res.copy_rows / res.copy_seconds if res.copy_seconds else 0.0
    rps = res.single_ok / res.single_seconds if res.single_seconds else 0.0
    p50, p99 = res.single_p50_ms, res.single_p99_ms

    def ok(cond: object) -> str:
        return "meets" if cond else "MISSES"

    lines = [
        (
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}; {server_version}; "
            f"client, API ({res.workers} uvicorn worker{'s' if res.workers > 1 else ''}) and database on the "
            f"same machine; single-reading client: {res.single_client}."
        ),
        "",
        "| measure | result | target |",
        "|---|---|---|",
        (
            f"| (a) batches of 1,000 by 8 clients: {res.batch_readings:,} of {n:,} readings accepted, "
            f"{res.stored:,} stored | {a:,.0f} readings/s | |"
        ),
        f"| (b) raw asyncpg COPY of the same rows, batches of 10,000 | {b:,.0f} rows/s | |",
        f"| (c) ratio a/b | {a / b if b else 0:.2f} | ≥ 0.8 ({ok(b and a / b >= 0.8)}) |",
        (
            f"| (d) single readings, 64 clients, {res.single_seconds:.0f} s: {res.single_ok:,} answered 2xx, "
            f"{res.single_stored:,} stored | "
            f"{rps:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms | "
            f"≥ 2,000 req/s ({ok(rps >= 2000)}), p99 ≤ 50 ms ({ok(p99 <= 50)}) |"
        ),
        f"| (e) peak RSS of the API process | {res.peak_rss_mb:.0f} MB | < 500 MB ({ok(res.peak_rss_mb < 500)}) |",
    ]
    if res.catch_up_s is not None:
        lines += ["", f"Agents caught up {res.catch_up_s:.1f} s after the last batch of (a) was answered (no outbox "
                  "event left unhandled)."]  # fmt: skip
    elif res.batch_readings:
        lines += ["", "Agents NOT caught up 300 s after the last batch of (a) (outbox events left unhandled)."]
    if res.cpu:
        lines += ["", "CPU during the phases (core-seconds; `scripts/bench/ingest_profile.py`):"]
        counts = {"(d)": (res.single_ok, "request"), "(a)": (res.batch_readings, "1,000 readings")}
        lines += [f"- {phase}: {split.describe(*counts.get(phase, (0, '')))}" for phase, split in res.cpu.items()]
    if res.batch_errors or res.single_errors:
        lines += [
            "",
            f"Non-2xx responses (not counted): batches {res.batch_errors}, singles {res.single_errors}",
        ]
    return "\n".join(lines)


#: Section headings of the report file, per kind of server.
PLAIN_SECTION = "## Plain PostgreSQL"
TIMESCALE_SECTION = "## TimescaleDB"
WORKERS_SECTION = "## Plain PostgreSQL, agents in worker processes (NATS JetStream)"


def merge_report(existing: str | None, section: str, body: str) -> str:
    """The report file with ``section`` (one of the headings above) replaced by ``body``; the other server's
    section and any other ``## `` section (the history table) are kept, in that order."""
    order: list[str] = []
    sections: dict[str, str] = {}
    current = None
    for line in (existing or "").splitlines():
        if line.startswith("## "):
            current = line
            order.append(current)
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    sections[section] = f"\n{body}\n"
    managed = [h for h in (PLAIN_SECTION, WORKERS_SECTION, TIMESCALE_SECTION) if h in sections]
    rest = [h for h in order if h not in (PLAIN_SECTION, WORKERS_SECTION, TIMESCALE_SECTION)]
    parts = [f"# Ingest benchmark\n\n{METHOD}\n"]
    parts += [f"\n{heading}\n\n{sections[heading].strip(chr(10))}\n" for heading in managed + rest]
    return "".join(parts)


__all__ = ["METHOD", "PLAIN_SECTION", "TIMESCALE_SECTION", "Results", "merge_report", "report"]
