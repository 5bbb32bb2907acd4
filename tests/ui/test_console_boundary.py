"""The console is a separate deployable that talks to the API only: no ``ui`` module imports ``core`` or ``apps``
(checked on the source's syntax tree, so a lazy import inside a function counts too), it reads no project files,
and its settings take the console's own key, never SM_API_KEY."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT
from ui.settings import DEV_CONSOLE_API_KEY, ConsoleConfigurationError, ConsoleSettings, get_console_settings

UI = PROJECT_ROOT / "ui"
FORBIDDEN = ("core", "apps")


def forbidden_imports(source: str) -> list[str]:
    """``module`` of every import of a FORBIDDEN package (``import x``, ``from x import y``,
    ``importlib.import_module("x")``, ``__import__("x")``) in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) == "import_module" or getattr(node.func, "id", None) == "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        found += [n for n in names if n.split(".")[0] in FORBIDDEN]
    return found


def test_the_checker_finds_every_form_of_import() -> None:
    source = (
        "import core\nimport os, apps.api.main as m\nfrom core.config import X\n"
        "def f():\n    from apps.cli import commands\n    importlib.import_module('core.ml')\n"
        "    __import__('apps')\nfrom ui.components import api\nimport corelib\nfrom .core import x\n"
    )
    assert forbidden_imports(source) == ["core", "apps.api.main", "core.config", "apps.cli", "core.ml", "apps"]


def test_no_ui_module_imports_core_or_apps() -> None:
    modules = sorted(UI.rglob("*.py"))
    assert len(modules) >= 20 and UI / "streamlit_app.py" in modules
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): found
        for path in modules
        if (found := forbidden_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_no_pages_folder_beside_the_main_script() -> None:
    """Streamlit auto-discovers ui/pages/ and competes with st.navigation on a first deep-link visit."""
    assert not (UI / "pages").exists()


def test_the_console_reads_no_project_files() -> None:
    for path in UI.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for marker in ("PROJECT_ROOT", ".read_text(", ".read_bytes(", " open(", ".rglob(", ".is_file()"):
            assert marker not in text, f"{path.relative_to(PROJECT_ROOT)} uses {marker}"


def test_settings_take_the_console_key_and_ignore_sm_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_API_KEY", "sm_bootstrap-key-the-console-must-not-use")
    monkeypatch.delenv("SM_CONSOLE_API_KEY", raising=False)
    monkeypatch.setenv("SM_ENV", "test")
    assert ConsoleSettings().api_key.get_secret_value() == DEV_CONSOLE_API_KEY
    monkeypatch.setenv("SM_CONSOLE_API_KEY", "sm_console-own-key")
    monkeypatch.setenv("API_BASE_URL", "http://api.internal:8000")
    monkeypatch.setenv("SM_CONSOLE_TIMEOUT_S", "7.5")
    settings = ConsoleSettings()
    assert (settings.api_key.get_secret_value(), settings.api_base_url, settings.timeout_s) == (
        "sm_console-own-key", "http://api.internal:8000", 7.5,
    )  # fmt: skip


def test_production_refuses_the_development_console_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_ENV", "production")
    monkeypatch.delenv("SM_CONSOLE_API_KEY", raising=False)
    get_console_settings.cache_clear()
    try:
        with pytest.raises(ConsoleConfigurationError, match="SM_CONSOLE_API_KEY is the development default") as exc:
            get_console_settings()
        assert DEV_CONSOLE_API_KEY not in str(exc.value)
        monkeypatch.setenv("SM_CONSOLE_API_KEY", "sm_" + "k" * 40)
        get_console_settings.cache_clear()
        assert get_console_settings().api_key.get_secret_value() == "sm_" + "k" * 40
    finally:
        get_console_settings.cache_clear()


def test_ui_modules_are_found_where_the_shell_expects_them() -> None:
    views = {p.name for p in (UI / "views").glob("*.py")}
    shell = (UI / "streamlit_app.py").read_text(encoding="utf-8")
    named = {
        n.value for n in ast.walk(ast.parse(shell)) if isinstance(n, ast.Constant) and str(n.value).endswith(".py")
    }
    assert named and named <= views, named - views
    assert Path(UI / "views").is_dir()
