"""The Dockerfiles and the build context: multi-stage on one Python, COPY sources in the context, installs from the
lock only, a non-root user, what each image needs to run its commands, .dockerignore and no registry URLs."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
import tomllib
from configparser import ConfigParser
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from tests.support.compose import (
    PROJECT_ROOT,
)
from tests.support.dockerfiles import (
    DOCKERIGNORE,
    LOCK_FILE,
    Dockerfile,
    DockerIgnore,
    Stage,
    cli_option,
    expand_source,
    files_in_context,
    image_has,
    image_tree,
    install_commands,
    materialise,
)
from tests.support.stack import (
    DOCKERFILES,
    container_settings,
    dockerfile_of,
)


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
            dockerfile, stage, _ = dockerfile_of(svc)
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


def _arg_default(stage: Stage, value: str) -> str:
    """``${NAME}`` / ``$NAME`` → the default of the stage's ``ARG NAME=default``; anything else unchanged."""
    m = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", value)
    if not m:
        return value
    for ins in stage.of("ARG"):
        name, _, default = ins.value.strip().partition("=")
        if name == m.group(1):
            return default.strip().strip("\"'")
    raise AssertionError(f"{value}: no ARG {m.group(1)} in the stage")


def test_dockerfile_runs_as_a_non_root_user(dockerfile: Dockerfile) -> None:
    """A numeric USER (hadolint DL3066), not 0, that the stage creates with useradd (same uid and group)."""
    stage = dockerfile.final
    user = stage.user()
    assert user, f"{dockerfile.path.name}: no USER"
    uid, _, gid = user.partition(":")
    for part in (uid, gid or uid):
        resolved = _arg_default(stage, part)
        assert resolved.isdigit() and int(resolved) != 0, f"{dockerfile.path.name}: USER {user} ({resolved})"
    runs = "\n".join(stage.run_scripts())
    assert re.search(rf"useradd[^\n]*--uid\s+\"?{re.escape(uid)}\"?", runs), "create the user you switch to"
    if gid:
        assert re.search(rf"groupadd[^\n]*--gid\s+\"?{re.escape(gid)}\"?", runs), (
            "create the group you switch to"
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
    ui_script = Path(cli_option(ui_command(container_settings(svcs["ui"])), "run") or "")
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
