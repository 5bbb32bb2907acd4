"""What the compose tests know about our stack: the services, the Dockerfiles, the CLI command and port each server
runs with; and helpers that compute a service's image, container environment, Settings and port from the files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apps.cli.stack import Service, Stack
from core.config import Settings
from tests.support.compose import (
    COMPOSE_FILE,
    healthcheck_urls,
    published_ports,
    service_environment,
    settings_env_names,
    settings_from_env,
)
from tests.support.dockerfiles import Dockerfile, Stage

APP_SERVICES = ("api", "worker", "ui", "mlflow", "notebook_runner")
#: The bus and the shared rate-limit counters of the scaled-out stack (docs/architecture/scaling.md).
SCALE_SERVICES = ("nats", "redis")
NATS_CLUSTER = ("nats-1", "nats-2", "nats-3")
REQUIRED_SERVICES = ("db", *APP_SERVICES, *SCALE_SERVICES, *NATS_CLUSTER)
DOCKERFILES = ("Dockerfile", "Dockerfile.ml", "Dockerfile.mlflow")
#: service → (CLI command it runs, Settings field of its port, its SM_ port variable)
SERVED = {
    "api": ("serve-api", "api_port", "SM_API_PORT"),
    "ui": ("serve-ui", "ui_port", "SM_UI_PORT"),
    "mlflow": ("serve-mlflow", "mlflow_port", "SM_MLFLOW_PORT"),
}


def dockerfile_of(service: dict[str, Any]) -> tuple[Dockerfile, Stage, Path]:
    build = service["build"]
    build = {"context": build} if isinstance(build, str) else build
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    dockerfile = Dockerfile.load(context / build.get("dockerfile", "Dockerfile"))
    return dockerfile, dockerfile.target(build.get("target")), context


def container_env(service: dict[str, Any], dotenv: dict[str, str] | None = None) -> dict[str, str]:
    """What the process sees: the image's ENV, overridden by compose's environment (no .env by default)."""
    env: dict[str, str] = {}
    if "build" in service:
        _, stage, _ = dockerfile_of(service)
        env.update(stage.env())
    env.update(service_environment(service, dotenv))
    return env


def container_settings(service: dict[str, Any]) -> Settings:
    names = settings_env_names(Settings)
    return settings_from_env(
        Settings, {k: v for k, v in container_env(service).items() if k.upper() in names}
    )


def cli_step(argv: list[str]) -> list[str]:
    """``python -m apps.cli CMD ARGS`` → ``[CMD, *ARGS]``."""
    assert argv[:3] == ["python", "-m", "apps.cli"], f"not the project CLI: {argv}"
    return argv[3:]


def container_port(service: dict[str, Any]) -> int:
    ports = published_ports(service)
    assert len(ports) == 1, f"expected one published port, got {ports}"
    return ports[0][1]


def health_url(svc: dict[str, Any]) -> Any:
    urls = healthcheck_urls(svc)
    assert len(urls) == 1, f"expected one URL in the health check, got {urls}"
    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python", "slim images have no curl: check with python"
    return urls[0]


class RecordedStack(Stack):
    """``make up``'s Stack with its servers and steps recorded instead of started (and no database): what
    ``start()`` would launch, in order, with each process's command and environment. Pair it with a monkeypatched
    ``apps.cli.stack._port_busy`` returning False."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.launched: list[tuple[str, list[str], dict[str, str]]] = []
        self.steps: list[str] = []

    def _database(self) -> None:
        self.env["DATABASE_URL"] = "postgresql://recorded"

    def _step(self, label: str, cmd: list[str]) -> None:
        self.steps.append(label)

    def _launch(self, *svcs: Service) -> None:
        for svc in svcs:
            self.launched.append((svc.name, svc.cmd, {**self.env, **svc.env}))
