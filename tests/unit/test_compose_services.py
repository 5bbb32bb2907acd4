"""docker-compose.yml services: the required services and keys, the commands they run (registered ``apps.cli``
commands, migrations first), published ports, health checks, dependencies, restart policies and the db service.

The compose tests read the files without a Docker engine and check them against the real code (tests/support/compose.py,
tests/support/dockerfiles.py, tests/support/stack.py); the others are test_compose_wiring.py, test_compose_env.py and
test_compose_images.py.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from core.config import Settings, load_settings
from tests.support.compose import (
    COMPOSE_FILE,
    PROJECT_ROOT,
    depends_on,
    mount_covering,
    service_command,
    service_environment,
    service_mounts,
    services,
    shell_steps,
    unescape_compose,
)
from tests.support.stack import (
    REQUIRED_SERVICES,
    SERVED,
    cli_step,
    container_env,
    container_port,
    container_settings,
    dockerfile_of,
    health_url,
)

#: TimescaleDB before 2.29 failed every background job in our measurements (shared/FIELD_NOTES.md).
MIN_TIMESCALEDB = (2, 29)


# --- compose: services and commands -------------------------------------------------------------------------------
def test_compose_has_the_required_services_and_no_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose Specification has no `version:` key"
    missing = set(REQUIRED_SERVICES) - set(services(compose))
    assert not missing, f"missing services: {sorted(missing)}"
    known_top = {"name", "services", "volumes", "networks", "configs", "secrets", "include"}
    unknown = {k for k in compose if k not in known_top and not k.startswith("x-")}
    assert not unknown, f"unknown top-level keys: {unknown}"


def test_compose_service_keys_are_compose_keys(svcs: dict[str, dict[str, Any]]) -> None:
    known = {
        "build", "command", "container_name", "depends_on", "entrypoint", "env_file", "environment", "expose",
        "healthcheck", "image", "init", "labels", "logging", "networks", "ports", "profiles", "pull_policy",
        "read_only", "restart", "shm_size", "stop_grace_period", "stop_signal", "tmpfs", "ulimits", "user",
        "volumes", "working_dir", "deploy", "cap_drop", "security_opt",
    }  # fmt: skip
    for name, svc in svcs.items():
        unknown = set(svc) - known
        assert not unknown, f"{name}: unknown keys {unknown} (typo?)"
        assert ("image" in svc) or ("build" in svc), f"{name}: needs an image or a build"


def test_api_migrates_then_serves_with_registered_cli_command(
    svcs: dict[str, dict[str, Any]], cli_commands: dict[str, Any]
) -> None:
    script = shell_steps(service_command(svcs["api"]))
    assert script.separators == ["&&"], f"migrations must gate the server with &&, got {script.separators}"
    assert len(script.steps) == 2, script.steps
    migrate, serve = script.steps
    assert migrate == ["alembic", "upgrade", "head"], migrate
    assert (PROJECT_ROOT / "alembic.ini").is_file(), "`alembic upgrade head` needs alembic.ini at the WORKDIR"
    assert "migrate" in cli_commands, "the local path's `python -m apps.cli migrate` is not registered"
    assert cli_step(serve) == ["serve-api"]
    assert "serve-api" in cli_commands
    assert script.execs_last, "exec the server so it is PID 1's child that receives SIGTERM"


@pytest.mark.parametrize("service", ["ui", "mlflow"])
def test_server_commands_are_registered_cli_commands(
    service: str, svcs: dict[str, dict[str, Any]], cli_commands: dict[str, Any]
) -> None:
    argv = service_command(svcs[service])
    assert cli_step(argv) == [SERVED[service][0]]
    assert SERVED[service][0] in cli_commands, f"`{SERVED[service][0]}` is not a command of apps.cli.app"


def test_notebook_runner_runs_the_notebook_command_once(
    svcs: dict[str, dict[str, Any]], cli_commands: dict[str, Any]
) -> None:
    svc = svcs["notebook_runner"]
    script = shell_steps([unescape_compose(part) for part in service_command(svc)])
    assert len(script.steps) == 1 and script.execs_last, script
    args = cli_step(script.steps[0])
    assert args == ["notebook", "${NOTEBOOK_FILE}"], args
    assert "notebook" in cli_commands
    arguments = [p for p in cli_commands["notebook"].params if p.param_type_name == "argument"]
    assert len(arguments) == 1 and arguments[0].required, "notebook takes the notebook file as its argument"

    default = service_environment(svc)["NOTEBOOK_FILE"]
    assert (PROJECT_ROOT / "notebooks" / default).is_file(), f"default NOTEBOOK_FILE {default} does not exist"
    assert service_environment(svc, {"NOTEBOOK_FILE": "other.ipynb"})["NOTEBOOK_FILE"] == "other.ipynb"


def test_image_default_commands_match_compose(svcs: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "mlflow"):
        _, stage, _ = dockerfile_of(svcs[name])
        assert stage.cmd() == service_command(svcs[name]), (
            f"{name}: image CMD differs from the compose command"
        )
    _, ml_stage, _ = dockerfile_of(svcs["notebook_runner"])
    steps = shell_steps(ml_stage.cmd())
    assert steps.execs_last and cli_step(steps.steps[0])[0] == "notebook", ml_stage.cmd()


# --- compose: ports, hosts, health checks -------------------------------------------------------------------------
@pytest.mark.parametrize("service", sorted(SERVED))
def test_published_port_is_the_settings_default_and_the_env_port(
    service: str, svcs: dict[str, dict[str, Any]]
) -> None:
    svc = svcs[service]
    _, field, env_var = SERVED[service]
    port = container_port(svc)
    default = Settings.model_fields[field].default
    env = container_env(svc)
    assert port == default, f"{service}: container port {port} != Settings.{field} {default}"
    assert int(env[env_var]) == port, f"{service}: {env_var}={env.get(env_var)} != {port}"
    assert getattr(container_settings(svc), field) == port
    _, stage, _ = dockerfile_of(svc)
    assert port in stage.exposed_ports(), f"{service}: image does not EXPOSE {port}"


@pytest.mark.parametrize(
    ("service", "field"), [("api", "api_host"), ("ui", "ui_host"), ("mlflow", "mlflow_host")]
)
def test_servers_bind_all_interfaces_in_containers(
    service: str, field: str, svcs: dict[str, dict[str, Any]]
) -> None:
    assert getattr(container_settings(svcs[service]), field) == "0.0.0.0"


@pytest.mark.parametrize("service", sorted(SERVED))
def test_healthcheck_targets_the_service_port_on_loopback(
    service: str, svcs: dict[str, dict[str, Any]]
) -> None:
    url = health_url(svcs[service])
    assert url.hostname in ("127.0.0.1", "localhost")
    assert url.port == container_port(svcs[service])


async def test_api_healthcheck_is_an_api_route_that_answers_without_the_database(
    svcs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    import httpx

    from apps.api.main import create_app

    settings = load_settings(
        env="test", mlflow_tracking_uri="http://127.0.0.1:9", data_dir=tmp_path, log_dir=tmp_path
    )
    app = create_app(settings)
    url = health_url(svcs["api"])
    assert url.path in app.openapi()["paths"], f"{url.path} is not a route of create_app()"
    # Liveness: 200 from the bare app (no lifespan, no database), or compose restarts a working API.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.get(url.path)
    assert response.status_code == 200, response.text


def test_ui_healthcheck_is_streamlits_health_route(svcs: dict[str, dict[str, Any]]) -> None:
    from streamlit.web.server.starlette.starlette_routes import ROUTE_HEALTH

    assert health_url(svcs["ui"]).path == "/" + ROUTE_HEALTH.lstrip("/")


def test_mlflow_healthcheck_is_an_mlflow_server_route(svcs: dict[str, dict[str, Any]]) -> None:
    from mlflow.server import app as mlflow_app

    rules = {rule.rule for rule in mlflow_app.url_map.iter_rules()}
    assert health_url(svcs["mlflow"]).path in rules


def test_depends_on_conditions(svcs: dict[str, dict[str, Any]]) -> None:
    expected = {
        "api": {"db": {"service_healthy"}, "mlflow": {"service_started", "service_healthy"}},
        "ui": {"api": {"service_healthy"}},
        "notebook_runner": {"db": {"service_healthy"}, "mlflow": {"service_healthy", "service_started"}},
    }
    for name, deps in expected.items():
        actual = depends_on(svcs[name])
        for dep, allowed in deps.items():
            assert actual.get(dep) in allowed, f"{name} depends_on {dep}: {actual.get(dep)} not in {allowed}"
    for name, svc in svcs.items():
        for dep, condition in depends_on(svc).items():
            assert dep in svcs, f"{name} depends on unknown service {dep}"
            if condition == "service_healthy":
                assert "healthcheck" in svcs[dep], (
                    f"{name} waits for {dep} to be healthy; {dep} has no healthcheck"
                )


def test_restart_policies(svcs: dict[str, dict[str, Any]]) -> None:
    assert svcs["api"].get("restart") == "unless-stopped"
    restart = svcs["notebook_runner"].get("restart")
    assert restart == "no", (
        f'a one-shot job must not loop: restart: "no" (quoted; bare no is YAML false), got {restart!r}'
    )
    for name in ("db", "mlflow", "ui"):
        assert svcs[name].get("restart") == "unless-stopped", name


# --- compose: db --------------------------------------------------------------------------------------------------
def test_db_is_timescaledb_on_postgresql_17(svcs: dict[str, dict[str, Any]]) -> None:
    image = svcs["db"]["image"]
    m = re.fullmatch(r"timescale/timescaledb:(\d+)\.(\d+)\.(\d+)-pg(\d+)", image)
    assert m, f"not a pinned timescale/timescaledb:<version>-pg<major> image: {image}"
    assert int(m.group(4)) == 17, image
    assert (int(m.group(1)), int(m.group(2))) >= MIN_TIMESCALEDB, (
        f"{image}: background jobs broken before 2.29"
    )


def test_db_init_script_is_mounted_and_creates_the_extension(svcs: dict[str, dict[str, Any]]) -> None:
    init = [m for m in service_mounts(svcs["db"]) if m.target.startswith("/docker-entrypoint-initdb.d")]
    assert init, "no init script mounted into /docker-entrypoint-initdb.d"
    for mount in init:
        assert mount.kind == "bind"
        assert PurePosixPath(mount.target).parent == PurePosixPath("/docker-entrypoint-initdb.d"), (
            "mount the script file: mounting the directory hides the image's own init scripts"
        )
        source = (COMPOSE_FILE.parent / mount.source).resolve()
        assert source.is_file(), f"{mount.source} does not exist"
        assert source.suffix in (".sql", ".sh") and PurePosixPath(mount.target).name == source.name
    sql = "\n".join((COMPOSE_FILE.parent / m.source).read_text() for m in init)
    assert re.search(r"CREATE\s+EXTENSION\s+IF\s+NOT\s+EXISTS\s+timescaledb", sql, re.IGNORECASE), sql


def test_db_data_volume_and_healthcheck(svcs: dict[str, dict[str, Any]]) -> None:
    db = svcs["db"]
    data = mount_covering(service_mounts(db), "/var/lib/postgresql/data")
    assert data is not None and data.kind == "volume", "database files must live on a named volume"
    test = db["healthcheck"]["test"]
    command = unescape_compose(test[1] if test[0] == "CMD-SHELL" else " ".join(test[1:]))
    assert command.startswith("pg_isready"), command
    assert re.search(r"-U\s+\S*\$\{?POSTGRES_USER", command) and re.search(
        r"-d\s+\S*\$\{?POSTGRES_DB", command
    ), "pg_isready must check the configured user and database"
