"""``make datasets``: download the catalogue's sources, verify them, and put them in place atomically.

Every download is streamed (httpx) into ``<name>.part`` next to its destination and renamed only after its
SHA-256 (and size, when known) matched: an interrupted or corrupted download never leaves a file the notebooks
would read. A file already present with the right checksum is not downloaded again. Archives are downloaded into
``<dest>/.downloads/``, expanded there (nested zip in Python; 7z and rar layers with ``bsdtar`` or ``7z`` from
PATH), and the members the catalogue names are checked and moved into place the same way; the archive and the
expansion are removed afterwards (``keep_archives`` keeps the archive).

Nothing here runs unless a person asks (``python -m apps.cli datasets``): the platform never downloads at run time.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from core.datasets.catalogue import Dataset, Member, Source

#: progress(description, total bytes or None) -> advance(n bytes)
ProgressFactory = Callable[[str, int | None], Callable[[int], None]]
CHUNK = 1 << 20
UNVERIFIED_MANIFEST = "SHA256SUMS.unverified"
DOWNLOADS = ".downloads"


class DatasetDownloadError(RuntimeError):
    """A download failed, was refused (checksum or size), or an archive lacked a file the platform reads."""


@dataclass
class FileResult:
    target: str
    sha256: str
    #: "downloaded", "present" (already there, checksum matched) or "unverified" (no known checksum)
    status: str


@dataclass
class DatasetResult:
    dataset: Dataset
    files: list[FileResult] = field(default_factory=list)

    @property
    def unverified(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "unverified"]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def source_url(source: Source, mirror: str | None) -> str:
    """The official URL, or ``<mirror>/<file name>`` when a mirror (e.g. an internal file server) is given."""
    return source.url if not mirror else f"{mirror.rstrip('/')}/{quote(source.filename)}"


def _no_progress(description: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None


def download(
    client: httpx.Client,
    url: str,
    destination: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: ProgressFactory = _no_progress,
    label: str | None = None,
) -> str:
    """Stream ``url`` to ``destination`` through ``destination.part``; return the SHA-256.

    The ``.part`` file is renamed only when the status is 2xx and the size and checksum (when given) match;
    otherwise it is removed and :class:`DatasetDownloadError` says why."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    digest = hashlib.sha256()
    written = 0
    try:
        with client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise DatasetDownloadError(
                    f"{url}: HTTP {response.status_code} {response.reason_phrase}; nothing was written"
                )
            length = response.headers.get("content-length")
            advance = progress(
                label or destination.name, int(length) if length and length.isdigit() else size
            )
            with part.open("wb") as handle:
                for block in response.iter_bytes(CHUNK):
                    handle.write(block)
                    digest.update(block)
                    written += len(block)
                    advance(len(block))
    except httpx.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise DatasetDownloadError(
            f"{url}: download failed ({type(exc).__name__}: {exc}); nothing was kept"
        ) from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if size is not None and written != size:
        part.unlink(missing_ok=True)
        raise DatasetDownloadError(
            f"{url}: expected {size:,} bytes, received {written:,}; the partial file was removed"
        )
    if sha256 is not None and actual != sha256:
        part.unlink(missing_ok=True)
        raise DatasetDownloadError(
            f"{url}: checksum mismatch for {destination.name} (expected SHA-256 {sha256}, got {actual}); "
            "the file was refused and removed"
        )
    os.replace(part, destination)
    return actual


# --- archives ------------------------------------------------------------------------------------------------

_ARCHIVE = re.compile(r"\.(zip|7z|rar)$", re.IGNORECASE)


def _expand_external(archive: Path, into: Path) -> None:
    tools = (["bsdtar", "-xf", str(archive), "-C", str(into)], ["7z", "x", "-y", f"-o{into}", str(archive)])
    for command in tools:
        if shutil.which(command[0]):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise DatasetDownloadError(
                    f"{command[0]} could not unpack {archive.name}: {done.stderr.strip()[-500:]}"
                )
            return
    raise DatasetDownloadError(
        f"{archive.name} is a {archive.suffix} archive: unpacking it needs bsdtar (Debian: apt-get install "
        "libarchive-tools) or 7z (apt-get install 7zip) on PATH"
    )


def expand(archive: Path, into: Path) -> None:
    """Unpack ``archive`` into ``into``, then every archive found inside, each into a folder named after it
    (``2nd_test.rar`` → ``2nd_test/``); the nested archive files are removed once unpacked."""
    pending = [(archive, into)]
    while pending:
        current, target = pending.pop()
        target.mkdir(parents=True, exist_ok=True)
        if current.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(current) as zf:
                    zf.extractall(target)  # member names are sanitised: no absolute paths, no '..'
            except zipfile.BadZipFile as exc:
                raise DatasetDownloadError(f"{current.name} is not a readable zip archive: {exc}") from exc
        else:
            _expand_external(current, target)
        if current != archive:
            current.unlink()
        for found in sorted(p for p in target.rglob("*") if p.is_file() and _ARCHIVE.search(p.name)):
            folder = found.with_name(_ARCHIVE.sub("", found.name))
            if folder.exists():
                folder = found.with_name(found.name + ".d")
            pending.append((found, folder))


def _members(root: Path, rules: Iterable[Member]) -> Iterable[tuple[Member, Path, str]]:
    """(rule, extracted file, target path) for every extracted file a rule matches (first rule wins)."""
    compiled = [(rule, re.compile(rule.pattern)) for rule in rules]
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        for rule, pattern in compiled:
            match = pattern.search(relative)
            if match:
                groups = {k: v for k, v in match.groupdict().items() if v is not None}
                yield rule, path, rule.target.format(**({"name": path.name} | groups))
                break


def _place(extracted: Path, target: Path, expected: str | None) -> str:
    actual = sha256_of(extracted)
    if expected is not None and actual != expected:
        raise DatasetDownloadError(
            f"{target.name}: checksum mismatch after extraction (expected SHA-256 {expected}, got {actual}); "
            "the file was refused and removed"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    shutil.move(str(extracted), part)
    os.replace(part, target)
    return actual


# --- datasets ------------------------------------------------------------------------------------------------


def _present(target: Path, sha256: str | None) -> bool:
    return target.is_file() and sha256 is not None and sha256_of(target) == sha256


def _fetch_file(
    client: httpx.Client, source: Source, dest: Path, mirror: str | None, progress: ProgressFactory
) -> FileResult:
    assert source.target is not None
    target = dest / source.target
    if _present(target, source.sha256):
        return FileResult(source.target, source.sha256 or "", "present")
    digest = download(
        client, source_url(source, mirror), target, sha256=source.sha256, size=source.size, progress=progress,
        label=source.target,
    )  # fmt: skip
    return FileResult(source.target, digest, "downloaded" if source.sha256 else "unverified")


def _fetch_archive(
    client: httpx.Client,
    source: Source,
    dest: Path,
    mirror: str | None,
    progress: ProgressFactory,
    keep_archives: bool,
) -> list[FileResult]:
    required = {
        target: sha for rule in source.members if rule.required for target, sha in rule.sha256.items()
    }
    done_marker = dest / DOWNLOADS / f"{source.filename}.done"
    if done_marker.is_file() and all(_present(dest / t, sha) for t, sha in required.items()):
        return [FileResult(t, sha, "present") for t, sha in required.items()]
    archive = dest / DOWNLOADS / source.filename
    if not archive.is_file():
        download(client, source_url(source, mirror), archive, progress=progress, label=source.filename)
    workdir = dest / DOWNLOADS / f"{source.filename}.extract"
    shutil.rmtree(workdir, ignore_errors=True)
    results: list[FileResult] = []
    try:
        expand(archive, workdir)
        for rule, extracted, relative in _members(workdir, source.members):
            expected = rule.sha256.get(relative)
            digest = _place(extracted, dest / relative, expected)
            results.append(FileResult(relative, digest, "downloaded" if expected else "unverified"))
        found = {r.target for r in results}
        missing = sorted(set(required) - found)
        if missing:
            raise DatasetDownloadError(
                f"{source.filename} does not hold the file(s) the platform reads: {', '.join(missing)}"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not keep_archives:
        archive.unlink(missing_ok=True)
    done_marker.write_text("\n".join(f"{r.sha256}  {r.target}" for r in results) + "\n")
    return results


def _record_unverified(dest: Path, results: list[FileResult]) -> None:
    unverified = [r for r in results if r.status == "unverified"]
    if not unverified:
        return
    manifest = dest / UNVERIFIED_MANIFEST
    entries: dict[str, str] = {}
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            digest, _, path = line.partition("  ")
            if path:
                entries[path] = digest
    entries.update({r.target: r.sha256 for r in unverified})
    manifest.write_text("".join(f"{digest}  {path}\n" for path, digest in sorted(entries.items())))


def fetch_dataset(
    dataset: Dataset,
    dest: Path,
    *,
    client: httpx.Client,
    mirror: str | None = None,
    progress: ProgressFactory = _no_progress,
    keep_archives: bool = False,
) -> DatasetResult:
    """Download and verify every source of ``dataset`` into ``dest``; raises :class:`DatasetDownloadError`."""
    result = DatasetResult(dataset)
    for source in dataset.sources:
        if source.is_archive:
            result.files += _fetch_archive(client, source, dest, mirror, progress, keep_archives)
        else:
            result.files.append(_fetch_file(client, source, dest, mirror, progress))
    _record_unverified(dest, result.files)
    return result


def http_client() -> httpx.Client:
    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(60.0, connect=30.0),
        headers={"User-Agent": "smart-maintenance-datasets"},
    )
