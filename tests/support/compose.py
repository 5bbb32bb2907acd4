"""Static readers for docker-compose.yml, .env.example and the Settings environment names.

There is no Docker engine where the tests run, so tests/unit/test_compose_*.py check the container files against
the local run path by reading them: compose's variable interpolation, commands, ports, mounts and health checks
here; Dockerfile stages, COPY sources, the image file system they produce and .dockerignore matching in
tests/support/dockerfiles.py. Only the subset of each format that our files use (and that a reviewer would
reasonably add) is implemented; anything unrecognised fails loudly rather than passing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import SplitResult, urlsplit

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"


# --- compose ------------------------------------------------------------------------------------------------------
def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise TypeError(f"{path} is not a YAML mapping")
    return data


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\?|\?|:\+|\+)(.*))?", re.DOTALL)


def interpolate(text: str, env: Mapping[str, str] | None = None, names: set[str] | None = None) -> str:
    """Compose-style interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?err}``, ``${VAR?err}``, ``${VAR:+alt}``, ``${VAR+alt}`` (defaults may nest).

    ``env`` plays the role of the shell environment plus ``.env``; it defaults to empty, which yields the values a
    deployment without ``.env`` gets. Every referenced name is added to ``names`` when given.
    """
    env = env or {}
    names = names if names is not None else set()
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise ValueError(f"unbalanced ${{ in {text!r}")
            expr = text[i + 2 : j - 1]
            i = j
            m = _BRACED.fullmatch(expr)
            if not m:
                raise ValueError(f"unsupported interpolation ${{{expr}}} in {text!r}")
            name, op, arg = m.group(1), m.group(2), m.group(3) or ""
            names.add(name)
            value = env.get(name)
            unset_or_empty = value is None or value == ""
            if op in (":-", "-"):
                if value is None or (op == ":-" and unset_or_empty):
                    value = interpolate(arg, env, names)
            elif op in (":?", "?"):
                if value is None or (op == ":?" and unset_or_empty):
                    raise ValueError(f"required variable {name} is not set: {arg}")
            elif op in (":+", "+"):
                present = value is not None and (op == "+" or value != "")
                value = interpolate(arg, env, names) if present else ""
            out.append(value or "")
            continue
        m = _NAME.match(text, i + 1)
        if not m:
            raise ValueError(f"lone $ in {text!r}; write $$ for a literal dollar")
        names.add(m.group(0))
        out.append(env.get(m.group(0), ""))
        i = m.end()
    return "".join(out)


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolated_names(obj: Any) -> set[str]:
    """Every variable name a compose document interpolates (keys and values, nested defaults included)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            for m in _REFERENCE.finditer(node.replace("$$", "")):
                names.add(m.group(1) or m.group(2))
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(k)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(obj)
    return names


def services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return compose.get("services") or {}


def service_environment(service: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``environment`` block as a dict, interpolated with ``env`` (default: no .env, defaults apply).

    A name without a value (``NAME:`` or ``- NAME``) is passed through as compose does: ``env``'s value when it
    has the name, otherwise the variable is left unset (absent from the result)."""
    env = env or {}
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    result: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            if str(key) in env:
                result[str(key)] = env[str(key)]
            continue
        result[str(key)] = interpolate(str(value), env)
    return result


def passed_through(service: Mapping[str, Any]) -> set[str]:
    """Names the ``environment`` block lists without a value (taken from .env or the shell when set)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return {item for item in raw if "=" not in item}
    return {str(k) for k, v in raw.items() if v is None}


def service_command(service: Mapping[str, Any]) -> list[str]:
    cmd = service.get("command")
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return shlex.split(cmd)
    return [str(part) for part in cmd]


def unescape_compose(value: str) -> str:
    """What the container receives for a compose string without variables: ``$$`` becomes ``$``."""
    return interpolate(value, {})


@dataclass(frozen=True)
class ShellScript:
    steps: list[list[str]]
    """Commands joined by ``&&``, each split like a shell would (a leading ``exec`` removed)."""
    separators: list[str]
    execs_last: bool


def shell_steps(argv: list[str]) -> ShellScript:
    """Split ``["sh", "-c", "a && exec b"]`` into its commands; any other argv is one command."""
    if len(argv) >= 3 and PurePosixPath(argv[0]).name in ("sh", "bash") and argv[1] == "-c":
        script = argv[2]
        separators = re.findall(r"&&|\|\||;|\n|(?<![&|])[&|](?![&|])", script)
        parts = [p.strip() for p in re.split(r"&&|\|\||;|\n", script) if p.strip()]
        steps = [shlex.split(p) for p in parts]
        execs_last = bool(steps) and steps[-1][:1] == ["exec"]
        steps = [s[1:] if s[:1] == ["exec"] else s for s in steps]
        return ShellScript(steps, separators, execs_last)
    return ShellScript([list(argv)], [], True)


def published_ports(service: Mapping[str, Any]) -> list[tuple[int | None, int]]:
    """(host port or None, container port) for each ``ports`` entry."""
    result: list[tuple[int | None, int]] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            result.append((int(published) if published is not None else None, int(entry["target"])))
            continue
        text = interpolate(str(entry)).split("/", 1)[0]
        parts = text.rsplit(":", 2)
        if len(parts) == 1:
            result.append((None, int(parts[0])))
        else:
            result.append((int(parts[-2]) if parts[-2] else None, int(parts[-1])))
    return result


_URL = re.compile(r"https?://[^\s'\"),]+")


def healthcheck_urls(service: Mapping[str, Any]) -> list[SplitResult]:
    test = (service.get("healthcheck") or {}).get("test") or []
    text = " ".join(test) if isinstance(test, list) else str(test)
    return [urlsplit(u) for u in _URL.findall(text)]


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    kind: str  # "volume" (named) or "bind"
    read_only: bool


def service_mounts(service: Mapping[str, Any]) -> list[Mount]:
    mounts: list[Mount] = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            kind = entry.get("type", "volume")
            mounts.append(
                Mount(
                    str(entry.get("source", "")),
                    str(entry["target"]),
                    kind,
                    bool(entry.get("read_only", False)),
                )
            )
            continue
        parts = interpolate(str(entry)).split(":")
        if len(parts) == 1:
            mounts.append(Mount("", parts[0], "volume", False))
            continue
        source, target = parts[0], parts[1]
        options = parts[2].split(",") if len(parts) > 2 else []
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        mounts.append(Mount(source, target, kind, "ro" in options))
    return mounts


def mount_covering(mounts: list[Mount], container_path: str) -> Mount | None:
    """The innermost mount whose target contains ``container_path``."""
    path = PurePosixPath(container_path)
    best: Mount | None = None
    for m in mounts:
        target = PurePosixPath(m.target)
        inside = path == target or target in path.parents
        if inside and (best is None or len(target.parts) > len(PurePosixPath(best.target).parts)):
            best = m
    return best


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


# --- .env files ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnvLine:
    name: str
    value: str
    commented: bool
    lineno: int


_ENV_LINE = re.compile(r"^(#\s*)?(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse_env_file(path: Path = ENV_EXAMPLE) -> list[EnvLine]:
    """Assignments in a dotenv file, including commented-out ``# NAME=value`` examples."""
    lines: list[EnvLine] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = _ENV_LINE.match(raw.strip())
        if not m:
            continue
        value = m.group(3).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        lines.append(EnvLine(m.group(2), value, m.group(1) is not None, n))
    return lines


# --- settings -----------------------------------------------------------------------------------------------------
def settings_env_names(settings_cls: type) -> dict[str, str]:
    """Environment variable name (upper case) → Settings field, as pydantic-settings reads them."""
    from pydantic import AliasChoices, AliasPath

    prefix = settings_cls.model_config.get("env_prefix", "")  # type: ignore[attr-defined]
    names: dict[str, str] = {}
    for field_name, info in settings_cls.model_fields.items():  # type: ignore[attr-defined]
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            choices = [c for c in alias.choices if isinstance(c, str)]
        elif isinstance(alias, str):
            choices = [alias]
        elif isinstance(alias, AliasPath):
            choices = [str(alias.path[0])]
        else:
            choices = [f"{prefix}{field_name}"]
        for choice in choices:
            names[choice.upper()] = field_name
    return names


@contextlib.contextmanager
def isolated_environ(values: Mapping[str, str], clear_names: set[str]) -> Iterator[None]:
    """Temporarily drop ``clear_names`` from os.environ and set ``values``."""
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.upper() in clear_names:
                del os.environ[name]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def settings_from_env(settings_cls: type, values: Mapping[str, str], env_file: Path | None = None) -> Any:
    """Build Settings from exactly ``values`` (and ``env_file``), ignoring this machine's environment and .env."""
    with isolated_environ(values, set(settings_env_names(settings_cls))):
        return settings_cls(_env_file=env_file)
