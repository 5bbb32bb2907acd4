"""Why a step or a server of ``make up`` failed, in one line: the service, the reason found in its log tail when
it is recognisable, and what to do.

``explain`` reads the tail of the service's log (or of a step's output) and the exit code; the rules below are
tried in order, and the first that matches names the reason and the action. Anything else still gets one line:
the service, how it ended, the last error line of its log and where the whole log is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

#: The setting that chooses each server's port (the action of a port conflict).
PORT_SETTINGS = {"api": "SM_API_PORT", "ui": "SM_UI_PORT", "mlflow": "SM_MLFLOW_PORT", "nats": "SM_NATS_PORT"}
GENERATE = "python -m apps.cli keys generate"


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    """Searched in the log tail."""
    explain: Callable[[str, re.Match[str]], str]
    """(service, match) -> "reason; action"."""
    services: tuple[str, ...] = ()
    """Only for these services (empty: any); ``worker`` stands for every ``worker-<n>``."""


def _error_detail(text: str) -> str:
    """The ``detail`` of a problem+json answer quoted in ``text``, else the text itself (shortened)."""
    start = text.find("{")
    if start >= 0:
        try:
            detail = json.loads(text[start:]).get("detail")
        except (ValueError, AttributeError):
            detail = re.search(r'"detail"\s*:\s*"([^"]*)"', text)
            detail = detail.group(1) if detail else None
        if detail:
            return str(detail)
    return text.strip()[:160]


def _simulator_key(_: str, match: re.Match[str]) -> str:
    status = match.group("status")
    detail = _error_detail(match.group("rest"))
    what = "was rejected" if status == "401" else "lacks the ingest scope"
    return (
        f"the simulator's key SM_SIMULATOR_API_KEY {what} ({status}): {detail}; set SM_SIMULATOR_API_KEY in .env "
        f"(a new one: `{GENERATE}`), the API registers it at start-up, and run `make up` again"
    )


def _port(service: str, match: re.Match[str]) -> str:
    port = next((g for g in match.groups() if g), "?")
    setting = PORT_SETTINGS.get(service, "its port setting")
    return (
        f"port {port} is already in use; stop what listens there (an earlier stack: `make down`; "
        f"find it with `ss -ltnp 'sport = :{port}'`) or choose another port with {setting}"
    )


def _bus(_: str, match: re.Match[str]) -> str:
    return (
        f"the NATS server is not reachable ({match.group(0).strip()[:120]}); check SM_BUS_URL and that the server "
        "runs with JetStream (or unset SM_BUS_URL: with SM_WORKERS > 0 `make up` starts an embedded one)"
    )


def _configuration(_: str, match: re.Match[str]) -> str:
    reason = " ".join(match.group("reason").split()).lstrip("- ").rstrip(".")
    return f"its configuration was refused: {reason}; fix it in .env (or the environment) and run `make up` again"


def _database(_: str, match: re.Match[str]) -> str:
    return (
        f"the database is not reachable ({match.group(0).strip()[:120]}); check DATABASE_URL and that "
        "PostgreSQL runs and accepts this user (or unset DATABASE_URL to use the embedded PostgreSQL)"
    )


def _missing_module(_: str, match: re.Match[str]) -> str:
    return f"a dependency is missing ({match.group(0).strip()}); run `make install` and `make up` again"


def _disk_full(_: str, match: re.Match[str]) -> str:
    return "the disk is full (No space left on device); free space under SM_DATA_DIR and SM_LOG_DIR and retry"


def _mlflow_store(_: str, match: re.Match[str]) -> str:
    return (
        f"MLflow cannot open its store ({match.group(0).strip()[:120]}); it was probably written by another "
        "MLflow version: move SM_DATA_DIR/mlflow aside (or run `mlflow db upgrade` on it) and run `make up` again"
    )


RULES: tuple[Rule, ...] = (
    Rule(
        re.compile(r"refused the key \(HTTP (?P<status>40[13])\):?(?P<rest>.*)", re.IGNORECASE),
        _simulator_key,
        ("simulator",),
    ),
    Rule(
        re.compile(
            r"address already in use.*?(\d{2,5})\)?|\('[^']*', (\d{2,5})\).*address already in use"
            r"|Port (\d{2,5}) is (?:not available|already in use)|Connection in use: \('[^']*', (\d{2,5})\)"
            r"|listen tcp [^\s,]*:(\d{2,5}): bind: address already in use",
            re.IGNORECASE,
        ),
        _port,
    ),
    Rule(re.compile(r"(?P<reason>refusing to start with [^\n]*)"), _configuration),
    Rule(
        re.compile(r"(?:invalid configuration:|ConfigurationError:)\s*(?P<reason>(?:.|\n)*?)(?:\n\S|\Z)"),
        _configuration,
    ),
    Rule(re.compile(r"No module named '?[\w.]+'?"), _missing_module),
    Rule(re.compile(r"No space left on device"), _disk_full),
    Rule(
        re.compile(
            r"Can't locate revision.*|alembic\.util\.exc\.CommandError.*|database schema.*out.of.date.*"
        ),
        _mlflow_store,
        ("mlflow",),
    ),
    # before the database's rule: a refused NATS connection also logs ConnectionRefusedError
    Rule(
        re.compile(r"(?:NoServersError|no servers available for connection|nats: timeout)[^\n]*"),
        _bus,
        ("api", "worker"),
    ),
    Rule(
        re.compile(
            r"(?:ConnectionRefusedError|OperationalError|InvalidPasswordError|InvalidCatalogNameError|"
            r"CannotConnectNowError)[^\n]*|password authentication failed[^\n]*|"
            r"database \"[^\"]+\" does not exist|could not connect to server[^\n]*|"
            r"the database is unavailable[^\n]*"
        ),
        _database,
        ("api", "migrations", "demo fleet", "database", "worker"),
    ),
)

_ERROR_LINE = re.compile(
    r"^\s*(?:[\w.]+(?:Error|Exception|Exit)\b.*|.*\b(?:ERROR|CRITICAL|FATAL)\b.*|error: .*)$"
)


def last_error_line(tail: str) -> str | None:
    """The last line of ``tail`` that looks like an error (a JSON log line's message when it is one)."""
    for raw in reversed(tail.splitlines()):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                if str(record.get("level", "")).upper() in ("ERROR", "CRITICAL"):
                    return str(record.get("message", line))[:200]
                continue
        if _ERROR_LINE.match(line):
            return line[:200]
    return None


def _how_it_ended(exit_code: int | None) -> str:
    if exit_code is None:
        return "failed"
    if exit_code in (-9, 137):
        return "was killed (SIGKILL: out of memory?)"
    if exit_code < 0:
        return f"was stopped by signal {-exit_code}"
    return f"exited with code {exit_code}"


def explain(service: str, tail: str, *, exit_code: int | None = None, log: str | None = None) -> str:
    """One line: ``<service> <how it ended>: <reason>; <action>``."""
    ended = _how_it_ended(exit_code)
    kind = re.sub(r"-\d+$", "", service)  # worker-2 -> worker
    for rule in RULES:
        if rule.services and kind not in rule.services:
            continue
        match = rule.pattern.search(tail)
        if match:
            return f"{service} {ended}: {rule.explain(service, match)}."
    where = f"; see {log}" if log else ""
    error = last_error_line(tail)
    if exit_code in (-9, 137):
        return f"{service} {ended}{where}; free memory or lower SM_API_WORKERS and run `make up` again."
    if error:
        return f"{service} {ended}: {error}{where}; fix that and run `make up` again."
    return f"{service} {ended} without an error message{where}; run `make up` again, and report it if it repeats."


def not_healthy(service: str, url: str, seconds: float, last: str, tail: str, log: str | None) -> str:
    """One line for a server that runs but did not answer its health check in time."""
    error = last_error_line(tail)
    found = f"; its log's last error: {error}" if error else ""
    where = f" (log {log})" if log else ""
    return (
        f"{service} did not become healthy within {seconds:.0f} s at {url} (last answer: {last}){found}{where}; "
        "a slow machine may need a second try (`make up`), otherwise fix what the log says."
    )
