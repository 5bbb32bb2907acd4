"""What `make up` starts for SM_WORKERS / SM_API_WORKERS / SM_BUS_URL (apps/cli/stack.py, apps/cli/stack_nats.py):
the order of the servers, the worker processes and their command, the SM_BUS_URL every process gets, when the
embedded NATS server runs, and the line that says what runs. The launches are recorded instead of started
(tests/integration/test_stack_nats.py and test_stack.py start the real processes)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from apps.cli import stack as stack_module
from apps.cli.stack import StackError
from apps.cli.stack_nats import bus_plan, describe, nats_binary, nats_command, no_consumer_warning, redact
from core.config import Settings, load_settings
from tests.support.stack import RecordedStack as _Recorded

CLI = [sys.executable, "-m", "apps.cli"]


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "development", "data_dir": tmp_path / "data", "log_dir": tmp_path / "logs", "bus_url": None,
        "api_port": 1, "ui_port": 2, "mlflow_port": 3, "nats_port": 4,  # never bound: the launches are recorded
    }  # fmt: skip
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(autouse=True)
def _ports_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack_module, "_port_busy", lambda host, port: False)


def _names(stack: _Recorded) -> list[str]:
    return [name for name, _, _ in stack.launched]


def test_default_stack_has_no_workers_and_no_bus_url(tmp_path: Path) -> None:
    stack = _Recorded(_settings(tmp_path))
    stack.start()
    assert _names(stack) == ["mlflow", "api", "ui", "simulator"]
    assert all("SM_BUS_URL" not in env for _, _, env in stack.launched)
    assert describe(stack.settings, stack.bus) == "1 API process, 0 workers, bus: in-process"


def test_workers_start_after_the_api_with_the_embedded_nats_url(tmp_path: Path) -> None:
    settings = _settings(tmp_path, workers=2, nats_port=14999, api_workers=3)
    stack = _Recorded(settings)
    stack.start()
    assert _names(stack) == ["nats", "mlflow", "api", "worker-1", "worker-2", "ui", "simulator"]
    assert stack.steps == ["migrations", "demo fleet"]
    launched = {name: (cmd, env) for name, cmd, env in stack.launched}
    for worker in ("worker-1", "worker-2"):
        assert launched[worker][0] == [*CLI, "worker"]  # all agents: the worker's default
    for name in ("api", "worker-1", "worker-2"):
        assert launched[name][1]["SM_BUS_URL"] == "nats://127.0.0.1:14999", name
    nats_cmd = launched["nats"][0]
    assert nats_cmd == nats_command(nats_cmd[0], settings)
    assert nats_cmd[nats_cmd.index("--addr") + 1] == "127.0.0.1"  # loopback only
    assert "--jetstream" in nats_cmd
    assert Path(nats_cmd[nats_cmd.index("--store_dir") + 1]) == settings.data_dir / "nats"
    assert (settings.data_dir / "nats").is_dir()
    assert describe(settings, stack.bus) == (
        f"3 API processes, 2 workers, bus: NATS JetStream at nats://127.0.0.1:14999 (embedded, store "
        f"{settings.data_dir / 'nats'})"
    )


def test_an_explicit_bus_url_is_used_as_is_without_an_embedded_server(tmp_path: Path) -> None:
    url = "nats://sm:secret@10.0.0.5:4222,nats://sm:secret@10.0.0.6:4222"
    settings = _settings(tmp_path, workers=1, bus_url=url)
    stack = _Recorded(settings)
    stack.start()
    assert _names(stack) == ["mlflow", "api", "worker-1", "ui", "simulator"]
    assert {env["SM_BUS_URL"] for name, _, env in stack.launched if name in ("api", "worker-1")} == {url}
    line = describe(settings, stack.bus)
    assert "secret" not in line and "nats://sm:***@10.0.0.5:4222,nats://sm:***@10.0.0.6:4222" in line
    assert no_consumer_warning(settings, stack.bus) is None


def test_a_bus_url_without_workers_warns_that_nothing_here_consumes(tmp_path: Path) -> None:
    settings = _settings(tmp_path, bus_url="nats://10.0.0.5:4222")
    plan = bus_plan(settings)
    assert (plan.url, plan.embedded) == ("nats://10.0.0.5:4222", False)
    warning = no_consumer_warning(settings, plan)
    assert warning is not None and "SM_WORKERS=0" in warning and "runs no agent" in warning


def test_the_embedded_server_is_the_pinned_wheels_binary() -> None:
    binary = nats_binary()
    assert binary is not None
    assert Path(binary).parent == Path(sys.executable).parent, binary  # the venv's scripts, not a system one


def test_a_missing_nats_binary_is_one_line_naming_make_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack_module, "nats_binary", lambda: None)
    stack = _Recorded(_settings(tmp_path, workers=1))
    with pytest.raises(StackError, match=r"make install.*SM_BUS_URL"):
        stack.start()
    assert _names(stack) == []


def test_redact_hides_passwords_and_tokens() -> None:
    assert redact("nats://nats:4222") == "nats://nats:4222"
    assert redact("nats://s3cr3t-token@nats:4222") == "nats://***@nats:4222"
    assert redact("nats://u:p@a:1,nats://b:2") == "nats://u:***@a:1,nats://b:2"
