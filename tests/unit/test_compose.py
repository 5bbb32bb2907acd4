"""docker-compose.yml, the Dockerfiles and .env.example mirror the local run path.

No Docker engine runs here, so these tests read the files and check them against the real code: the typer CLI's
registered commands, the API's routes, Streamlit's and MLflow's health routes, the Settings fields and defaults,
the command lines ``apps.cli`` builds, and the build context on disk. Nothing is hard-coded that the code can say.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import os
import re
import subprocess
import sys
import tomllib
from configparser import ConfigParser
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
from pydantic import ValidationError

from core.config import Settings, load_settings
from tests.support.compose import (
    COMPOSE_FILE,
    DOCKERIGNORE,
    ENV_EXAMPLE,
    LOCK_FILE,
    PROJECT_ROOT,
    Dockerfile,
    DockerIgnore,
    Stage,
    cli_option,
    depends_on,
    expand_source,
    files_in_context,
    healthcheck_urls,
    image_has,
    image_tree,
    install_commands,
    interpolated_names,
    load_compose,
    materialise,
    mount_covering,
    parse_env_file,
    published_ports,
    service_command,
    service_environment,
    service_mounts,
    services,
    settings_env_names,
    settings_from_env,
    shell_steps,
    unescape_compose,
)

APP_SERVICES = ("api", "ui", "mlflow", "notebook_runner")
REQUIRED_SERVICES = ("db", *APP_SERVICES)
DOCKERFILES = ("Dockerfile", "Dockerfile.ml", "Dockerfile.mlflow")
#: service → (CLI command it runs, Settings field of its port, its SM_ port variable)
SERVED = {
    "api": ("serve-api", "api_port", "SM_API_PORT"),
    "ui": ("serve-ui", "ui_port", "SM_UI_PORT"),
    "mlflow": ("serve-mlflow", "mlflow_port", "SM_MLFLOW_PORT"),
}
#: Variables that are not Settings fields, and who reads them.
COMPOSE_ONLY = {
    "POSTGRES_USER": "db image and compose (builds DATABASE_URL)",
    "POSTGRES_PASSWORD": "db image and compose (builds DATABASE_URL)",
    "POSTGRES_DB": "db image and compose (builds DATABASE_URL)",
    "NOTEBOOK_FILE": "notebook_runner's command",
    "APP_UID": "compose build argument: UID of the image user",
}
DB_IMAGE_ENV = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "TIMESCALEDB_TELEMETRY"}
GENERATE_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
SECRETS = ("SM_API_KEY", "SM_WEBHOOK_SIGNING_SECRET", "POSTGRES_PASSWORD")
#: TimescaleDB before 2.29 failed every background job in our measurements (shared/FIELD_NOTES.md).
MIN_TIMESCALEDB = (2, 29)


# --- fixtures -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def svcs(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return services(compose)


@pytest.fixture(scope="module")
def ignore() -> DockerIgnore:
    return DockerIgnore.load()


@pytest.fixture(scope="module")
def env_names() -> dict[str, str]:
    return settings_env_names(Settings)


@pytest.fixture(scope="module")
def cli_commands() -> dict[str, Any]:
    from apps.cli import app

    group = typer.main.get_command(app)
    commands = getattr(group, "commands", None)  # typer vendors click: duck-type the group
    assert isinstance(commands, dict), "apps.cli.app must be a group of commands"
    return dict(commands)


def _dockerfile_of(service: dict[str, Any]) -> tuple[Dockerfile, Stage, Path]:
    build = service["build"]
    build = {"context": build} if isinstance(build, str) else build
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    dockerfile = Dockerfile.load(context / build.get("dockerfile", "Dockerfile"))
    return dockerfile, dockerfile.target(build.get("target")), context


def _container_env(service: dict[str, Any], dotenv: dict[str, str] | None = None) -> dict[str, str]:
    """What the process sees: the image's ENV, overridden by compose's environment (no .env by default)."""
    env: dict[str, str] = {}
    if "build" in service:
        _, stage, _ = _dockerfile_of(service)
        env.update(stage.env())
    env.update(service_environment(service, dotenv))
    return env


def _container_settings(service: dict[str, Any]) -> Settings:
    names = settings_env_names(Settings)
    return settings_from_env(
        Settings, {k: v for k, v in _container_env(service).items() if k.upper() in names}
    )


def _cli_step(argv: list[str]) -> list[str]:
    """``python -m apps.cli CMD ARGS`` → ``[CMD, *ARGS]``."""
    assert argv[:3] == ["python", "-m", "apps.cli"], f"not the project CLI: {argv}"
    return argv[3:]


def _container_port(service: dict[str, Any]) -> int:
    ports = published_ports(service)
    assert len(ports) == 1, f"expected one published port, got {ports}"
    return ports[0][1]


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
    assert _cli_step(serve) == ["serve-api"]
    assert "serve-api" in cli_commands
    assert script.execs_last, "exec the server so it is PID 1's child that receives SIGTERM"


@pytest.mark.parametrize("service", ["ui", "mlflow"])
def test_server_commands_are_registered_cli_commands(
    service: str, svcs: dict[str, dict[str, Any]], cli_commands: dict[str, Any]
) -> None:
    argv = service_command(svcs[service])
    assert _cli_step(argv) == [SERVED[service][0]]
    assert SERVED[service][0] in cli_commands, f"`{SERVED[service][0]}` is not a command of apps.cli.app"


def test_notebook_runner_runs_the_notebook_command_once(
    svcs: dict[str, dict[str, Any]], cli_commands: dict[str, Any]
) -> None:
    svc = svcs["notebook_runner"]
    script = shell_steps([unescape_compose(part) for part in service_command(svc)])
    assert len(script.steps) == 1 and script.execs_last, script
    args = _cli_step(script.steps[0])
    assert args == ["notebook", "${NOTEBOOK_FILE}"], args
    assert "notebook" in cli_commands
    arguments = [p for p in cli_commands["notebook"].params if p.param_type_name == "argument"]
    assert len(arguments) == 1 and arguments[0].required, "notebook takes the notebook file as its argument"

    default = service_environment(svc)["NOTEBOOK_FILE"]
    assert (PROJECT_ROOT / "notebooks" / default).is_file(), f"default NOTEBOOK_FILE {default} does not exist"
    assert service_environment(svc, {"NOTEBOOK_FILE": "other.ipynb"})["NOTEBOOK_FILE"] == "other.ipynb"


def test_image_default_commands_match_compose(svcs: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "mlflow"):
        _, stage, _ = _dockerfile_of(svcs[name])
        assert stage.cmd() == service_command(svcs[name]), (
            f"{name}: image CMD differs from the compose command"
        )
    _, ml_stage, _ = _dockerfile_of(svcs["notebook_runner"])
    steps = shell_steps(ml_stage.cmd())
    assert steps.execs_last and _cli_step(steps.steps[0])[0] == "notebook", ml_stage.cmd()


# --- compose: ports, hosts, health checks -------------------------------------------------------------------------
@pytest.mark.parametrize("service", sorted(SERVED))
def test_published_port_is_the_settings_default_and_the_env_port(
    service: str, svcs: dict[str, dict[str, Any]]
) -> None:
    svc = svcs[service]
    _, field, env_var = SERVED[service]
    container_port = _container_port(svc)
    default = Settings.model_fields[field].default
    env = _container_env(svc)
    assert container_port == default, (
        f"{service}: container port {container_port} != Settings.{field} {default}"
    )
    assert int(env[env_var]) == container_port, f"{service}: {env_var}={env.get(env_var)} != {container_port}"
    assert getattr(_container_settings(svc), field) == container_port
    _, stage, _ = _dockerfile_of(svc)
    assert container_port in stage.exposed_ports(), f"{service}: image does not EXPOSE {container_port}"


@pytest.mark.parametrize(
    ("service", "field"), [("api", "api_host"), ("ui", "ui_host"), ("mlflow", "mlflow_host")]
)
def test_servers_bind_all_interfaces_in_containers(
    service: str, field: str, svcs: dict[str, dict[str, Any]]
) -> None:
    assert getattr(_container_settings(svcs[service]), field) == "0.0.0.0"


def _health_url(svc: dict[str, Any]) -> Any:
    urls = healthcheck_urls(svc)
    assert len(urls) == 1, f"expected one URL in the health check, got {urls}"
    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python", "slim images have no curl: check with python"
    return urls[0]


@pytest.mark.parametrize("service", sorted(SERVED))
def test_healthcheck_targets_the_service_port_on_loopback(
    service: str, svcs: dict[str, dict[str, Any]]
) -> None:
    url = _health_url(svcs[service])
    assert url.hostname in ("127.0.0.1", "localhost")
    assert url.port == _container_port(svcs[service])


async def test_api_healthcheck_is_an_api_route_that_answers_without_the_database(
    svcs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    import httpx

    from apps.api.main import create_app

    settings = load_settings(
        env="test", mlflow_tracking_uri="http://127.0.0.1:9", data_dir=tmp_path, log_dir=tmp_path
    )
    app = create_app(settings)
    url = _health_url(svcs["api"])
    assert url.path in app.openapi()["paths"], f"{url.path} is not a route of create_app()"
    # Liveness: 200 from the bare app (no lifespan, no database), or compose restarts a working API.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.get(url.path)
    assert response.status_code == 200, response.text


def test_ui_healthcheck_is_streamlits_health_route(svcs: dict[str, dict[str, Any]]) -> None:
    from streamlit.web.server.starlette.starlette_routes import ROUTE_HEALTH

    assert _health_url(svcs["ui"]).path == "/" + ROUTE_HEALTH.lstrip("/")


def test_mlflow_healthcheck_is_an_mlflow_server_route(svcs: dict[str, dict[str, Any]]) -> None:
    from mlflow.server import app as mlflow_app

    rules = {rule.rule for rule in mlflow_app.url_map.iter_rules()}
    assert _health_url(svcs["mlflow"]).path in rules


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


# --- compose: wiring between services -----------------------------------------------------------------------------
def test_ui_reaches_the_api_by_service_name(svcs: dict[str, dict[str, Any]]) -> None:
    url = _container_settings(svcs["ui"]).api_base_url
    assert url == f"http://api:{_container_port(svcs['api'])}"


@pytest.mark.parametrize("service", ["api", "notebook_runner"])
def test_mlflow_clients_use_the_mlflow_service_and_it_accepts_their_host_header(
    service: str, svcs: dict[str, dict[str, Any]]
) -> None:
    from mlflow.server.security_utils import get_default_allowed_hosts, is_allowed_host_header

    from apps.cli.stack import mlflow_command

    uri = urlsplit(_container_settings(svcs[service]).mlflow_tracking_uri)
    assert (uri.scheme, uri.hostname, uri.port) == ("http", "mlflow", _container_port(svcs["mlflow"]))

    cmd = mlflow_command(_container_settings(svcs["mlflow"]))
    allowed_opt = cli_option(cmd, "--allowed-hosts")
    allowed = [h.strip() for h in allowed_opt.split(",")] if allowed_opt else get_default_allowed_hosts()
    assert is_allowed_host_header(allowed, uri.netloc), f"MLflow would refuse Host {uri.netloc!r}: {allowed}"
    published = published_ports(svcs["mlflow"])[0][0]
    assert is_allowed_host_header(allowed, f"localhost:{published}"), "browsers on the host would be refused"


def test_mlflow_server_command_binds_and_keeps_its_data_on_the_volume(
    svcs: dict[str, dict[str, Any]],
) -> None:
    from apps.cli.stack import mlflow_command

    svc = svcs["mlflow"]
    cmd = mlflow_command(_container_settings(svc))
    assert cli_option(cmd, "--host") == "0.0.0.0"
    assert int(cli_option(cmd, "--port") or 0) == _container_port(svc)
    assert "--serve-artifacts" in cmd, "clients upload artifacts through the server (no shared volume)"

    mounts = service_mounts(svc)
    store = cli_option(cmd, "--backend-store-uri") or ""
    assert store.startswith("sqlite:///"), store
    artifacts = cli_option(cmd, "--artifacts-destination") or ""
    for path in (store.removeprefix("sqlite:///"), artifacts.removeprefix("file://")):
        path = "/" + path.lstrip("/")
        mount = mount_covering(mounts, path)
        assert mount is not None and mount.kind == "volume", (
            f"{path} is not on a named volume: lost on rebuild"
        )


def test_database_url_points_at_the_db_service_with_its_credentials(svcs: dict[str, dict[str, Any]]) -> None:
    dotenv = {"POSTGRES_USER": "sm_user", "POSTGRES_PASSWORD": "pw_123", "POSTGRES_DB": "sm_db"}
    for dotenv_values in ({}, dotenv):
        db_env = service_environment(svcs["db"], dotenv_values)
        for name in ("api", "notebook_runner"):
            url = urlsplit(service_environment(svcs[name], dotenv_values)["DATABASE_URL"])
            assert url.scheme.startswith("postgres"), url
            assert (url.hostname, url.port or 5432) == ("db", 5432)
            assert url.username == db_env["POSTGRES_USER"]
            assert url.password == db_env["POSTGRES_PASSWORD"]
            assert url.path.lstrip("/") == db_env["POSTGRES_DB"]


def test_every_service_reads_an_optional_env_file(svcs: dict[str, dict[str, Any]]) -> None:
    for name, svc in svcs.items():
        entries = svc.get("env_file")
        assert isinstance(entries, list), f"{name}: env_file missing or in short form"
        assert {"path": ".env", "required": False} in entries, f"{name}: {entries}"


def test_app_services_log_into_the_logs_bind_mount(svcs: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        svc = svcs[name]
        log_dir = str(_container_settings(svc).log_dir)
        mount = mount_covering(service_mounts(svc), log_dir)
        assert mount is not None and mount.kind == "bind", (
            f"{name}: SM_LOG_DIR {log_dir} is not on a bind mount"
        )
        assert PurePosixPath(mount.source) == PurePosixPath("./logs"), f"{name}: logs go to {mount.source}"


def test_named_volumes_are_declared_and_owned_by_the_image_user(
    compose: dict[str, Any], svcs: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, svc in svcs.items():
        for mount in service_mounts(svc):
            if mount.kind != "volume":
                continue
            assert mount.source in declared, f"{name}: volume {mount.source} is not declared"
            if "build" in svc:
                # A new named volume copies the image directory's ownership: it must exist and be the user's.
                _, stage, _ = _dockerfile_of(svc)
                runs = "\n".join(stage.run_scripts())
                assert re.search(rf"mkdir[^\n]*{re.escape(mount.target)}", runs), (
                    f"{name}: no mkdir {mount.target}"
                )
                assert re.search(rf"chown[^\n]*{re.escape(mount.target)}", runs), (
                    f"{name}: no chown {mount.target}"
                )


def test_notebook_runner_keeps_its_outputs_on_the_host(svcs: dict[str, dict[str, Any]]) -> None:
    from apps.cli.commands import notebook_command

    svc = svcs["notebook_runner"]
    _, stage, _ = _dockerfile_of(svc)
    cmd = notebook_command(service_environment(svc)["NOTEBOOK_FILE"])
    output = Path(cmd[cmd.index("papermill") + 2]) if "papermill" in cmd else None
    assert output is not None, cmd
    in_image = PurePosixPath(stage.workdir) / output.relative_to(PROJECT_ROOT).as_posix()
    mount = mount_covering(service_mounts(svc), str(in_image))
    assert mount is not None and mount.kind == "bind", f"{in_image} would be lost with the container"
    assert (PROJECT_ROOT / mount.source).resolve() == (PROJECT_ROOT / output.parent.relative_to(PROJECT_ROOT))
    assert mount_covering(service_mounts(svc), f"{stage.workdir}/docs/ml") is not None, "docs/ml not mounted"


def _notebook_path_parameters(notebook: Path) -> dict[str, str]:
    """String parameters of the papermill `parameters` cell that name a path inside the project."""
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in (c.get("metadata", {}).get("tags") or [])]
    assert len(tagged) == 1, f"{notebook.name}: needs exactly one cell tagged `parameters`"
    top_level = {p.name for p in PROJECT_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    found = {}
    for node in ast.walk(ast.parse("".join(tagged[0]["source"]))):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            value = node.value.value
            if (
                not value.startswith("/")
                and PurePosixPath(value).parts[:1]
                and value.split("/")[0] in top_level
            ):
                found[node.targets[0].id] = value  # type: ignore[attr-defined]
    return found


def test_notebooks_find_their_inputs_and_keep_their_outputs_in_the_container(
    svcs: dict[str, dict[str, Any]], ignore: DockerIgnore
) -> None:
    """Relative paths in each notebook's parameters resolve in the image (inputs) or on a bind mount (outputs)."""
    svc = svcs["notebook_runner"]
    _, stage, context = _dockerfile_of(svc)
    tree = image_tree(stage, context, ignore)
    mounts = service_mounts(svc)
    notebooks = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks to run"
    for notebook in notebooks:
        for name, value in _notebook_path_parameters(notebook).items():
            in_image = f"{stage.workdir}/{value}"
            mount = mount_covering(mounts, in_image)
            if mount is not None and mount.kind == "bind" and mount.read_only:
                host = COMPOSE_FILE.parent / mount.source / PurePosixPath(in_image).relative_to(mount.target)
                assert host.exists(), (
                    f"{notebook.name}: {name}={value} is not in the read-only mount {mount.source}"
                )
                assert image_has(tree, in_image), f"{notebook.name}: {name}={value} missing from the image"
            elif mount is None:
                assert image_has(tree, in_image), (
                    f"{notebook.name}: {name}={value} is neither in the image nor on a mount (outputs would be lost)"
                )


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


# --- settings names -----------------------------------------------------------------------------------------------
def test_compose_environment_names_are_settings(
    svcs: dict[str, dict[str, Any]], env_names: dict[str, str]
) -> None:
    for name in APP_SERVICES:
        unknown = {k for k in service_environment(svcs[name]) if k not in env_names and k not in COMPOSE_ONLY}
        assert not unknown, f"{name}: {sorted(unknown)} are not Settings fields (core/config.py)"
        _container_settings(svcs[name])  # every value validates
    unknown_db = set(service_environment(svcs["db"])) - DB_IMAGE_ENV
    assert not unknown_db, f"db: unexpected variables {unknown_db}"


def test_image_env_sm_names_are_settings(env_names: dict[str, str]) -> None:
    for name in DOCKERFILES:
        for stage in Dockerfile.load(PROJECT_ROOT / name).stages:
            unknown = {k for k in stage.env() if k.startswith("SM_") and k not in env_names}
            assert not unknown, f"{name}: {sorted(unknown)} are not Settings fields"


def test_env_example_names_are_settings_or_compose_variables(env_names: dict[str, str]) -> None:
    lines = parse_env_file(ENV_EXAMPLE)
    assert lines, ".env.example is empty"
    unknown = sorted({ln.name for ln in lines if ln.name not in env_names and ln.name not in COMPOSE_ONLY})
    assert not unknown, f".env.example: {unknown} are neither Settings fields nor compose variables"
    dupes = sorted({ln.name for ln in lines if sum(o.name == ln.name for o in lines) > 1})
    assert not dupes, f".env.example: {dupes} appear twice"


def test_compose_variables_are_documented_and_used(compose: dict[str, Any]) -> None:
    documented = {ln.name for ln in parse_env_file(ENV_EXAMPLE)}
    used = interpolated_names(compose)
    assert used <= documented, f"docker-compose.yml uses {sorted(used - documented)}, not in .env.example"
    dead = {n for n in documented & set(COMPOSE_ONLY) if n not in used}
    assert not dead, f".env.example documents {sorted(dead)} but compose never uses them"


def test_env_example_has_blank_secrets_and_says_how_to_generate_them() -> None:
    lines = parse_env_file(ENV_EXAMPLE)
    by_name = {ln.name: ln for ln in lines}
    text = ENV_EXAMPLE.read_text().splitlines()
    for name in SECRETS:
        assert name in by_name and not by_name[name].commented, f"{name} must be an active line to fill in"
        assert by_name[name].value == "", f"{name} must be blank in the example, not a usable secret"
    api_key = by_name["SM_API_KEY"].lineno
    assert any(GENERATE_HINT in line for line in text[max(0, api_key - 4) : api_key - 1]), (
        "SM_API_KEY needs a 'generate with: ...' comment just above it"
    )


def test_env_example_is_refused_until_the_secrets_are_filled_in(tmp_path: Path) -> None:
    env = {ln.name: ln.value for ln in parse_env_file(ENV_EXAMPLE) if not ln.commented}
    assert env.get("SM_ENV") == "production", "the example is for deployments: SM_ENV=production"
    with pytest.raises(ValidationError, match="SM_API_KEY"):
        settings_from_env(Settings, {}, env_file=ENV_EXAMPLE)


def test_env_example_values_validate(tmp_path: Path) -> None:
    """Every value, also the commented examples, is valid for its setting (with development secrets)."""
    lines = parse_env_file(ENV_EXAMPLE)
    uncommented = tmp_path / "env"
    uncommented.write_text("".join(f"{ln.name}={ln.value}\n" for ln in lines))
    blank_secrets = {n: "x" * 32 for n in ("SM_API_KEY", "SM_WEBHOOK_SIGNING_SECRET")}
    settings = settings_from_env(Settings, {**blank_secrets, "SM_ENV": "development"}, env_file=uncommented)
    assert settings.env.value == "development"


# --- Dockerfiles --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=DOCKERFILES)
def dockerfile(request: pytest.FixtureRequest) -> Dockerfile:
    path = PROJECT_ROOT / request.param
    assert path.is_file(), f"{request.param} is missing"
    return Dockerfile.load(path)


def test_compose_builds_existing_dockerfiles_and_targets(svcs: dict[str, dict[str, Any]]) -> None:
    built = set()
    for name, svc in svcs.items():
        if "build" in svc:
            dockerfile, stage, _ = _dockerfile_of(svc)
            assert stage is dockerfile.final, f"{name}: target {stage.name} is not the final (runtime) stage"
            built.add(dockerfile.path.name)
    assert built == set(DOCKERFILES), f"compose builds {built}"


def test_dockerfile_is_multi_stage_on_one_python(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, f"{dockerfile.path.name}: one FROM; build in a builder stage"
    assert dockerfile.final.name == "runtime"
    bases = {st.base for st in dockerfile.stages}
    assert len(bases) == 1, f"the venv is copied between stages: they need the same Python image, got {bases}"
    m = re.fullmatch(r"python:(\d+\.\d+)(?:\.\d+)?-slim(?:-\w+)?", bases.pop())
    assert m, "a python:<version>-slim base"
    from packaging.specifiers import SpecifierSet

    requires = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert m.group(1) in SpecifierSet(requires), f"python {m.group(1)} outside requires-python {requires}"
    assert m.group(1) == "3.11", "the local run path is Python 3.11"


def test_dockerfile_copy_sources_exist_in_the_build_context(
    dockerfile: Dockerfile, ignore: DockerIgnore
) -> None:
    context = dockerfile.path.parent
    names = [st.name for st in dockerfile.stages]
    for stage in dockerfile.stages:
        for cp in stage.copies():
            if cp.from_stage is not None:
                assert cp.from_stage in names[: stage.index], f"line {cp.line}: unknown stage {cp.from_stage}"
                continue
            for source in cp.sources:
                matched = expand_source(context, source)
                assert matched, f"{dockerfile.path.name} line {cp.line}: {source} does not exist"
                for path in matched:
                    rel = path.relative_to(context).as_posix()
                    assert not ignore.excluded(rel), (
                        f"{dockerfile.path.name}: {rel} is excluded by .dockerignore"
                    )
                    assert files_in_context(path, context, ignore), (
                        f"{dockerfile.path.name}: {rel} has no files in the build context (empty dirs are not in git)"
                    )


def _install_args(tokens: list[str]) -> tuple[list[str], list[str], set[str]]:
    """(requirement files, positional args, flags) of one pip/uv install command."""
    with_value = {"--python", "-p", "-r", "--requirement", "-c", "--constraint", "--target", "--prefix"}
    rest = tokens[tokens.index("install") + 1 :]
    reqs, positional, flags = [], [], set()
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok in with_value:
            if tok in ("-r", "--requirement", "-c", "--constraint"):
                reqs.append(rest[i + 1])
            flags.add(tok)
            i += 2
            continue
        if tok.startswith("-"):
            flags.add(tok.split("=", 1)[0])
        else:
            positional.append(tok)
        i += 1
    return reqs, positional, flags


def _project_build_files() -> list[str]:
    """Files `uv pip install .` reads: the readme and the package roots pyproject.toml declares."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    files = []
    readme = project["project"].get("readme")
    if isinstance(readme, str):
        files.append(readme)
    include = (
        project.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("include", [])
    )
    files += [f"{pattern.rstrip('*')}/__init__.py" for pattern in include]
    return files


def _pinned_uv_version() -> str:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    m = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", makefile, re.MULTILINE)
    assert m, "Makefile pins uv with UV_VERSION"
    return m.group(1)


def test_dockerfile_installs_only_the_lock_and_the_project(
    dockerfile: Dockerfile, ignore: DockerIgnore
) -> None:
    name = dockerfile.path.name
    uv_version = _pinned_uv_version()
    kinds = []
    venvs = set()
    for stage in dockerfile.stages:
        for script in stage.run_scripts():
            for tokens in install_commands(script):
                reqs, positional, flags = _install_args(tokens)
                assert not flags & {"-c", "--constraint", "-e", "--editable"}, f"{name}: {tokens}"
                if tokens[:1] != ["uv"]:
                    assert positional == [f"uv=={uv_version}"] and not reqs, (
                        f"{name}: pip installs only uv: {tokens}"
                    )
                    kinds.append("uv")
                    continue
                if reqs:
                    assert reqs == [LOCK_FILE] and not positional, (
                        f"{name}: install from {LOCK_FILE} only: {tokens}"
                    )
                    tree = image_tree(stage, dockerfile.path.parent, ignore)
                    assert image_has(tree, f"{stage.workdir}/{LOCK_FILE}"), (
                        f"{name}: {LOCK_FILE} is not copied"
                    )
                    kinds.append("lock")
                else:
                    assert positional == ["."] and "--no-deps" in flags, (
                        f"{name}: project with --no-deps: {tokens}"
                    )
                    tree = image_tree(stage, dockerfile.path.parent, ignore)
                    needed = ["pyproject.toml", *_project_build_files()]
                    missing = [p for p in needed if not image_has(tree, f"{stage.workdir}/{p}")]
                    assert not missing, f"{name}: building the project needs {missing} in the builder"
                    kinds.append("project")
                python = tokens[tokens.index("--python") + 1] if "--python" in tokens else None
                assert python and python.endswith("/bin/python"), f"{name}: install into the venv: {tokens}"
                venvs.add(str(PurePosixPath(python).parent.parent))
    assert kinds.count("lock") == 1 and kinds.count("project") == 1, f"{name}: {kinds}"
    assert kinds.index("lock") < kinds.index("project"), f"{name}: lock first, then the project"
    assert len(venvs) == 1, venvs
    venv = venvs.pop()
    copied = [cp for cp in dockerfile.final.copies() if cp.from_stage is not None]
    assert any(cp.sources == [venv] and cp.dest.rstrip("/") == venv for cp in copied), (
        f"{name}: the runtime stage must copy {venv} from the builder"
    )
    path = dockerfile.final.env().get("PATH", "")
    assert path.split(":")[0] == f"{venv}/bin", f"{name}: PATH must start with {venv}/bin, got {path}"
    other = [p.name for p in PROJECT_ROOT.glob("requirements*") if p.name != LOCK_FILE]
    assert not any(o in dockerfile.text for o in other), f"{name} mentions another requirements file {other}"


def test_dockerfile_runs_as_a_non_root_user(dockerfile: Dockerfile) -> None:
    user = dockerfile.final.user()
    assert user and user.split(":")[0] not in ("root", "0"), f"{dockerfile.path.name}: USER {user}"
    runs = "\n".join(dockerfile.final.run_scripts())
    assert re.search(rf"useradd[^\n]*\b{re.escape(user.split(':')[0])}\b", runs), (
        "create the user you switch to"
    )


def test_images_with_lightgbm_have_the_openmp_runtime() -> None:
    lock = (PROJECT_ROOT / LOCK_FILE).read_text()
    assert re.search(r"^lightgbm==", lock, re.MULTILINE), "lock without lightgbm: revisit this test"
    for name in ("Dockerfile", "Dockerfile.ml"):
        runs = "\n".join(Dockerfile.load(PROJECT_ROOT / name).final.run_scripts())
        assert re.search(r"apt-get install[^\n]*\blibgomp1\b", runs), f"{name}: LightGBM needs libgomp1"


def _tree(name: str, ignore: DockerIgnore) -> tuple[Stage, dict[str, Path]]:
    stage = Dockerfile.load(PROJECT_ROOT / name).final
    return stage, image_tree(stage, PROJECT_ROOT, ignore)


def test_api_ui_image_has_what_its_commands_need(
    ignore: DockerIgnore, svcs: dict[str, dict[str, Any]]
) -> None:
    from apps.cli.stack import ui_command

    stage, tree = _tree("Dockerfile", ignore)
    wd = stage.workdir
    assert wd == "/app"
    ini = ConfigParser(interpolation=None)
    ini.read(PROJECT_ROOT / "alembic.ini")
    script_location = ini["alembic"]["script_location"].replace("%(here)s", ".").removeprefix("./")
    needed = ["alembic.ini", script_location, "apps/cli/__init__.py", "apps/api/main.py", "core/config.py"]
    ui_script = Path(cli_option(ui_command(_container_settings(svcs["ui"])), "run") or "")
    needed.append(ui_script.relative_to(PROJECT_ROOT).as_posix())
    missing = [p for p in needed if not image_has(tree, f"{wd}/{p}")]
    assert not missing, f"Dockerfile runtime stage lacks {missing} under {wd}"


def test_ml_and_mlflow_images_have_what_their_commands_need(ignore: DockerIgnore) -> None:
    stage, tree = _tree("Dockerfile.ml", ignore)
    for p in ("apps/cli/__init__.py", "core/config.py", "notebooks"):
        assert image_has(tree, f"{stage.workdir}/{p}"), f"Dockerfile.ml lacks {p}"
    stage, tree = _tree("Dockerfile.mlflow", ignore)
    for p in ("apps/cli/__init__.py", "core/config.py"):
        assert image_has(tree, f"{stage.workdir}/{p}"), f"Dockerfile.mlflow lacks {p}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "commands"),
    [
        ("Dockerfile", [["serve-api"], ["serve-ui"], ["migrate"], ["seed"]]),
        ("Dockerfile.mlflow", [["serve-mlflow"]]),
        ("Dockerfile.ml", [["notebook"]]),
    ],
)
def test_cli_starts_from_the_image_layout(
    name: str, commands: list[list[str]], ignore: DockerIgnore, tmp_path: Path
) -> None:
    """Rebuild the image's WORKDIR from its COPY lines alone and run the CLI there (as PYTHONPATH=/app does)."""
    stage, tree = _tree(name, ignore)
    root = materialise(tree, stage.workdir, tmp_path / "app")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "PYTHON"))}
    env["PYTHONPATH"] = str(root)
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "apps.cli", *args, "--help"],
            cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, (
            f"{name}: apps.cli {args[0]} fails in the image layout:\n{done.stderr[-3000:]}"
        )
    if name == "Dockerfile":
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "heads"],
            cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0 and "(head)" in done.stdout, (
            f"alembic in the image layout:\n{done.stderr[-3000:]}"
        )


# --- build context and registries ---------------------------------------------------------------------------------
def test_dockerignore_keeps_secrets_and_local_state_out(ignore: DockerIgnore) -> None:
    assert DOCKERIGNORE.is_file()
    for path in (".env", ".venv/bin/python", ".git/config", ".data/pg/PG_VERSION", "logs/api.log",
                 "apps/__pycache__/x.cpython-311.pyc", "notebooks/output/run.ipynb"):  # fmt: skip
        assert ignore.excluded(path), f"{path} would be sent to the Docker daemon"
    for path in (LOCK_FILE, "pyproject.toml", "apps/cli/__init__.py", "core/config.py"):
        assert not ignore.excluded(path), f"{path} is needed by the builds"


_ANY_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s'\"@]*@)?([^/:\s'\"]*)")
_INDEX_OPTIONS = re.compile(r"--(?:extra-)?index-url|--find-links|--trusted-host|--index\b|PIP_INDEX|UV_INDEX|"
                            r"PIP_EXTRA_INDEX|UV_EXTRA_INDEX|PIP_FIND_LINKS|UV_FIND_LINKS", re.IGNORECASE)  # fmt: skip


@pytest.mark.parametrize("name", [*DOCKERFILES, "docker-compose.yml", ".env.example", ".dockerignore"])
def test_no_registry_urls_or_index_options(name: str) -> None:
    text = (PROJECT_ROOT / name).read_text()
    assert not _INDEX_OPTIONS.search(text), f"{name}: package index options belong to the deployer's config"
    for m in _ANY_URL.finditer(text):
        host = m.group(2)
        if not host or "." not in host:
            continue  # a compose service name, localhost or a path
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pytest.fail(f"{name}: URL host {host!r} (only service names and IP literals belong here)")
