"""docker-compose.yml's `mqtt` and `mqtt-bridge` services against the local run path and infrastructure/mosquitto:
the bridge runs the registered `mqtt-bridge` command in the API's image with the API's database, reaches the
broker by its service name with the credentials the broker writes into its password file, and the user the ACL
names; the broker runs the shipped configuration, whose files and persistence lie on its mounts."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import pytest
import typer

from core.config import PROJECT_ROOT
from tests.support.compose import (
    depends_on,
    load_compose,
    mount_covering,
    published_ports,
    service_command,
    service_environment,
    service_mounts,
    services,
    unescape_compose,
)
from tests.support.stack import cli_step, container_settings

CONF_DIR = PROJECT_ROOT / "infrastructure" / "mosquitto"


@pytest.fixture(scope="module")
def svcs() -> dict[str, dict[str, Any]]:
    return services(load_compose())


def conf() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (CONF_DIR / "mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            values.setdefault(key, []).append(value.strip())
    return values


def test_the_bridge_runs_the_registered_command_in_the_apis_image_on_its_database(
    svcs: dict[str, dict[str, Any]],
) -> None:
    from apps.cli import app

    commands = getattr(typer.main.get_command(app), "commands", {})
    bridge, api = svcs["mqtt-bridge"], svcs["api"]
    assert cli_step(service_command(bridge)) == ["mqtt-bridge"] and "mqtt-bridge" in commands
    assert bridge["build"] == api["build"] and bridge.get("env_file") == api.get("env_file")
    assert service_environment(bridge)["DATABASE_URL"] == service_environment(api)["DATABASE_URL"]
    assert not published_ports(bridge), "the bridge serves nothing"
    deps = depends_on(bridge)
    assert deps["db"] == "service_healthy" and deps["mqtt"] == "service_healthy"
    assert deps["api"] == "service_healthy", "the API migrates the database first"
    settings = container_settings(bridge)
    assert settings.log_dir == PurePosixPath("/app/logs/mqtt-bridge")
    assert (settings.mqtt_host, settings.mqtt_port) == ("mqtt", 1883)
    assert settings.mqtt_url is None and settings.mqtt_client_id == "sm-mqtt-bridge"


@pytest.mark.parametrize("dotenv", [{}, {"SM_MQTT_USERNAME": "bridge-7", "SM_MQTT_PASSWORD": "s3cret"}])
def test_the_bridge_logs_in_with_the_user_the_broker_writes_and_the_acl_names(
    svcs: dict[str, dict[str, Any]], dotenv: dict[str, str]
) -> None:
    bridge, broker = service_environment(svcs["mqtt-bridge"], dotenv), service_environment(svcs["mqtt"], dotenv)
    for name in ("SM_MQTT_USERNAME", "SM_MQTT_PASSWORD"):
        assert bridge[name] == broker[name], name
    script = unescape_compose(" ".join(service_command(svcs["mqtt"])))
    assert 'mosquitto_passwd -b /mosquitto/data/passwd "${SM_MQTT_USERNAME}" "${SM_MQTT_PASSWORD}"' in script
    assert script.rstrip().endswith("exec mosquitto -c /mosquitto/config/mosquitto.conf")
    if not dotenv:  # the default user is the one the shipped ACL lets read readings and write rejections
        acl = (CONF_DIR / "acl").read_text()
        assert re.search(rf"^user {re.escape(bridge['SM_MQTT_USERNAME'])}\ntopic read sm/\+/\+/readings\n"
                         r"topic write sm/\+/\+/rejected$", acl, re.MULTILINE)  # fmt: skip


def test_the_broker_runs_the_shipped_configuration_with_its_files_on_its_mounts(
    svcs: dict[str, dict[str, Any]],
) -> None:
    broker = svcs["mqtt"]
    mounts = service_mounts(broker)
    config = mount_covering(mounts, "/mosquitto/config/mosquitto.conf")
    assert config is not None and config.source == "./infrastructure/mosquitto" and config.read_only
    values = conf()
    data = mount_covering(mounts, values["persistence_location"][0])
    assert data is not None and data.kind == "volume" and data.source == "mqtt_data" and not data.read_only
    assert mount_covering(mounts, values["password_file"][0]) == data, "the password file is written at start"
    assert mount_covering(mounts, values["acl_file"][0]) == config
    assert (CONF_DIR / PurePosixPath(values["acl_file"][0]).name).is_file()
    assert values["listener"] == ["1883"] and values["allow_anonymous"] == ["false"]
    assert values["persistence"] == ["true"] and values["max_queued_messages"] == ["0"]
    assert published_ports(broker) == [(1883, 1883)]
    assert "mqtt_data" in load_compose()["volumes"]
    image, _, tag = broker["image"].rpartition(":")
    assert image == "eclipse-mosquitto" and re.fullmatch(r"2\.0\.\d+", tag), broker["image"]
