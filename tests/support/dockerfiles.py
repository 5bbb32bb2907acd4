"""Static readers for the Dockerfiles and .dockerignore: Dockerfile stages, COPY sources and the image file system
they produce, .dockerignore matching, pip/uv install commands.

As in tests/support/compose.py, only the subset of each format that our files use (and that a reviewer would
reasonably add) is implemented; anything unrecognised fails loudly rather than passing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dockerfile_parse import DockerfileParser

from tests.support.compose import PROJECT_ROOT

DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
LOCK_FILE = "requirements.lock"


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
