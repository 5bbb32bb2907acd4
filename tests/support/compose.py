"""Static readers for docker-compose.yml, the Dockerfiles, .dockerignore and .env.example.

There is no Docker engine where the tests run, so tests/unit/test_compose.py checks the container files against
the local run path by reading them: compose's variable interpolation, Dockerfile stages, COPY sources and the
image file system they produce, .dockerignore matching. Only the subset of each format that our files use (and
that a reviewer would reasonably add) is implemented; anything unrecognised fails loudly rather than passing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import SplitResult, urlsplit

import yaml
from dockerfile_parse import DockerfileParser

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
LOCK_FILE = "requirements.lock"


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
    """The ``environment`` block as a dict, interpolated with ``env`` (default: no .env, defaults apply)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = [item.split("=", 1) if "=" in item else [item, ""] for item in raw]
        raw = dict(pairs)
    return {str(k): interpolate("" if v is None else str(v), env) for k, v in raw.items()}


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
        return {name: "service_started" for name in raw}
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


# --- .dockerignore ------------------------------------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"bad .dockerignore pattern {pattern!r}")
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out))


@dataclass
class DockerIgnore:
    rules: list[tuple[bool, re.Pattern[str], str]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path = DOCKERIGNORE) -> DockerIgnore:
        rules = []
        if path.exists():
            for raw in path.read_text(encoding="utf-8").splitlines():
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                negate = line.startswith("!")
                pat = line[1:].strip() if negate else line
                pat = os.path.normpath(pat).replace(os.sep, "/").lstrip("/")
                pat = pat.removeprefix("./")
                rules.append((negate, _pattern_regex(pat), line))
        return cls(rules)

    def excluded(self, relpath: str) -> bool:
        """Whether the build context leaves ``relpath`` (posix, relative to the context) out."""
        parts = PurePosixPath(relpath).parts
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for negate, rx, _ in self.rules:
            if any(rx.fullmatch(c) for c in candidates):
                result = not negate
        return result


# --- Dockerfiles --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    name: str
    value: str
    line: int


@dataclass(frozen=True)
class Copy:
    sources: list[str]
    dest: str
    """Absolute path in the image (resolved against the WORKDIR in force)."""
    from_stage: str | None
    instruction: str
    line: int


@dataclass
class Stage:
    index: int
    name: str | None
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]

    @property
    def workdir(self) -> str:
        wd = "/"
        for ins in self.of("WORKDIR"):
            wd = str(PurePosixPath(wd) / ins.value.strip())
        return wd

    def copies(self) -> list[Copy]:
        result: list[Copy] = []
        wd = "/"
        for ins in self.instructions:
            if ins.name == "WORKDIR":
                wd = str(PurePosixPath(wd) / ins.value.strip())
            if ins.name not in ("COPY", "ADD"):
                continue
            rest = ins.value.strip()
            flags: dict[str, str] = {}
            while (m := re.match(r"--([a-z-]+)(?:=(\S*))?\s+", rest)) is not None:
                flags[m.group(1)] = m.group(2) or ""
                rest = rest[m.end() :]
            tokens = [str(t) for t in json.loads(rest)] if rest.startswith("[") else shlex.split(rest)
            if len(tokens) < 2:
                raise ValueError(f"line {ins.line}: {ins.name} needs a source and a destination")
            *sources, dest = tokens
            if not dest.startswith("/"):
                dest = str(PurePosixPath(wd) / dest) + ("/" if dest.endswith("/") or dest == "." else "")
            result.append(Copy(sources, dest, flags.get("from"), ins.name, ins.line))
        return result

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for ins in self.of("ENV"):
            tokens = shlex.split(ins.value, posix=True)
            if tokens and "=" not in tokens[0]:
                values[tokens[0]] = " ".join(tokens[1:])
                continue
            for tok in tokens:
                key, _, val = tok.partition("=")
                values[key] = val
        return values

    def cmd(self) -> list[str]:
        cmds = self.of("CMD")
        if not cmds:
            return []
        value = cmds[-1].value.strip()
        if value.startswith("["):
            return [str(v) for v in json.loads(value)]
        return ["/bin/sh", "-c", value]

    def user(self) -> str | None:
        users = self.of("USER")
        return users[-1].value.strip() if users else None

    def run_scripts(self) -> list[str]:
        scripts = []
        for ins in self.of("RUN"):
            tokens = ins.value.strip()
            while tokens.startswith("--"):
                tokens = tokens.split(None, 1)[1] if " " in tokens else ""
            scripts.append(tokens)
        return scripts

    def exposed_ports(self) -> set[int]:
        ports: set[int] = set()
        for ins in self.of("EXPOSE"):
            for tok in ins.value.split():
                ports.add(int(tok.split("/")[0]))
        return ports


@dataclass
class Dockerfile:
    path: Path
    stages: list[Stage]
    text: str

    @classmethod
    def load(cls, path: Path) -> Dockerfile:
        text = path.read_text(encoding="utf-8")
        with path.open("rb") as fh:
            structure = DockerfileParser(fileobj=fh, env_replace=False).structure
        stages: list[Stage] = []
        for item in structure:
            name, value = item["instruction"].upper(), item["value"]
            if name == "FROM":
                tokens = value.split()
                tokens = [t for t in tokens if not t.startswith("--platform")]
                stage_name = tokens[2] if len(tokens) >= 3 and tokens[1].lower() == "as" else None
                stages.append(Stage(len(stages), stage_name, tokens[0]))
            elif name in ("ARG", "COMMENT") and not stages:
                continue
            elif stages:
                stages[-1].instructions.append(Instruction(name, value, item["startline"] + 1))
            else:
                raise ValueError(f"{path}: {name} before the first FROM")
        return cls(path, stages, text)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name_or_index: str) -> Stage:
        for st in self.stages:
            if st.name == name_or_index or str(st.index) == name_or_index:
                return st
        raise KeyError(f"{self.path.name}: no stage {name_or_index!r}")

    def target(self, name: str | None) -> Stage:
        return self.final if name is None else self.stage(name)


def expand_source(context: Path, source: str) -> list[Path]:
    """Context paths a COPY source names (globs resolved); empty when nothing matches."""
    source = source.lstrip("/")
    if any(ch in source for ch in "*?["):
        return sorted(context.glob(source))
    path = context / source
    return [path] if path.exists() else []


def files_in_context(path: Path, context: Path, ignore: DockerIgnore) -> list[Path]:
    """Files under ``path`` that reach the build context (for a file: itself, if not ignored)."""
    candidates = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return [p for p in candidates if not ignore.excluded(p.relative_to(context).as_posix())]


def image_tree(stage: Stage, context: Path, ignore: DockerIgnore) -> dict[str, Path]:
    """Absolute image path → context path for what the stage COPYs from the build context (files only)."""
    tree: dict[str, Path] = {}
    for cp in stage.copies():
        if cp.from_stage is not None:
            continue
        matched = [p for src in cp.sources for p in expand_source(context, src)]
        dest_is_dir = cp.dest.endswith("/") or len(matched) > 1 or len(cp.sources) > 1
        for src in matched:
            for f in files_in_context(src, context, ignore):
                if src.is_dir():
                    target = PurePosixPath(cp.dest) / f.relative_to(src).as_posix()
                elif dest_is_dir:
                    target = PurePosixPath(cp.dest) / src.name
                else:
                    target = PurePosixPath(cp.dest)
                tree[str(target)] = f
    return tree


def image_has(tree: Mapping[str, Path], image_path: str) -> bool:
    """A file at ``image_path``, or a directory with at least one file under it."""
    prefix = image_path.rstrip("/") + "/"
    return image_path in tree or any(p.startswith(prefix) for p in tree)


def materialise(tree: Mapping[str, Path], root_in_image: str, dest: Path) -> Path:
    """Copy the files the image has under ``root_in_image`` into ``dest`` (a stand-in for the WORKDIR)."""
    root = PurePosixPath(root_in_image)
    for image_path, src in tree.items():
        p = PurePosixPath(image_path)
        if root not in p.parents:
            continue
        out = dest / p.relative_to(root)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)
    return dest


_INSTALL = re.compile(r"\b(?:pip3?|uv\s+pip|python3?\s+-m\s+pip)\s+install\b")


def install_commands(script: str) -> list[list[str]]:
    """Each ``pip install`` / ``uv pip install`` command in a RUN script, tokenised."""
    commands = []
    for part in re.split(r"&&|\|\||;|\n", script.replace("\\\n", " ")):
        part = part.strip()
        if _INSTALL.search(part):
            commands.append(shlex.split(part))
    return commands


def cli_option(argv: list[str], option: str) -> str | None:
    """Value of ``--option VALUE`` or ``--option=VALUE`` in an argv; None when absent."""
    for i, tok in enumerate(argv):
        if tok == option and i + 1 < len(argv):
            return argv[i + 1]
        if tok.startswith(option + "="):
            return tok.split("=", 1)[1]
    return None
