"""docker-compose.yml wiring between services: service-name URLs, MLflow's allowed hosts and volumes, database
credentials, env files, log and output mounts, and the notebook parameter paths inside the container."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.compose import (
    COMPOSE_FILE,
    PROJECT_ROOT,
    mount_covering,
    published_ports,
    service_environment,
    service_mounts,
)
from tests.support.dockerfiles import (
    DockerIgnore,
    cli_option,
    image_has,
    image_tree,
)
from tests.support.stack import (
    APP_SERVICES,
    container_port,
    container_settings,
    dockerfile_of,
)


# --- compose: wiring between services -----------------------------------------------------------------------------
def test_ui_reaches_the_api_by_service_name(svcs: dict[str, dict[str, Any]]) -> None:
    url = container_settings(svcs["ui"]).api_base_url
    assert url == f"http://api:{container_port(svcs['api'])}"


@pytest.mark.parametrize("service", ["api", "notebook_runner"])
def test_mlflow_clients_use_the_mlflow_service_and_it_accepts_their_host_header(
    service: str, svcs: dict[str, dict[str, Any]]
) -> None:
    from mlflow.server.security_utils import get_default_allowed_hosts, is_allowed_host_header

    from apps.cli.stack import mlflow_command

    uri = urlsplit(container_settings(svcs[service]).mlflow_tracking_uri)
    assert (uri.scheme, uri.hostname, uri.port) == ("http", "mlflow", container_port(svcs["mlflow"]))

    cmd = mlflow_command(container_settings(svcs["mlflow"]))
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
    cmd = mlflow_command(container_settings(svc))
    assert cli_option(cmd, "--host") == "0.0.0.0"
    assert int(cli_option(cmd, "--port") or 0) == container_port(svc)
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


#: Services that must not read .env: it holds secrets they have no use for.
WITHOUT_DOTENV = {
    "ui": "the console holds its own key only (not the database, bootstrap key or webhook secret)",
    **dict.fromkeys(
        ("nats", "redis", "nats-1", "nats-2", "nats-3", "mqtt"),
        "a broker or cache image that reads none of the platform's settings: .env's secrets stay out of it",
    ),
}


def test_services_read_an_optional_env_file_except_the_console(svcs: dict[str, dict[str, Any]]) -> None:
    for name, svc in svcs.items():
        entries = svc.get("env_file")
        if name in WITHOUT_DOTENV:
            assert entries is None, f"{name} must not read .env: {WITHOUT_DOTENV[name]}"
            continue
        assert isinstance(entries, list), f"{name}: env_file missing or in short form"
        assert {"path": ".env", "required": False} in entries, f"{name}: {entries}"


def test_the_console_gets_its_own_key_and_nothing_of_the_database(svcs: dict[str, dict[str, Any]]) -> None:
    dotenv = {
        "SM_ENV": "production",
        "SM_API_KEY": "bootstrap-" + "a1" * 16,
        "SM_CONSOLE_API_KEY": "console-" + "b2" * 16,
        "SM_WEBHOOK_SIGNING_SECRET": "webhook-" + "c3" * 16,
        "POSTGRES_PASSWORD": "pw-" + "d4" * 16,
        "SM_LOG_LEVEL": "DEBUG",
    }
    env = service_environment(svcs["ui"], dotenv)
    assert env["SM_CONSOLE_API_KEY"] == dotenv["SM_CONSOLE_API_KEY"], "the console's key comes from .env"
    assert env["SM_LOG_LEVEL"] == "DEBUG"
    leaked = {k for k, v in env.items() if v in (dotenv["SM_API_KEY"], dotenv["SM_WEBHOOK_SIGNING_SECRET"])}
    assert not leaked and "SM_API_KEY" not in env, (
        f"the console must not get the bootstrap key or secret: {leaked}"
    )
    database = {
        k for k, v in env.items() if "DATABASE" in k or "POSTGRES" in k or dotenv["POSTGRES_PASSWORD"] in v
    }
    assert not database, f"the console must not get the database: {sorted(database)}"
    assert "SM_CONSOLE_API_KEY" not in service_environment(svcs["ui"], {}), (
        "without .env: the dev default applies"
    )


def test_app_services_log_into_the_logs_bind_mount(svcs: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        svc = svcs[name]
        log_dir = str(container_settings(svc).log_dir)
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
                _, stage, _ = dockerfile_of(svc)
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
    _, stage, _ = dockerfile_of(svc)
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
    _, stage, context = dockerfile_of(svc)
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
