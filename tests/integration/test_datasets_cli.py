"""``python -m apps.cli datasets`` (make datasets) against a local HTTP server on 127.0.0.1 that serves the
catalogue's files under their download names (``--mirror``). The served files are built at test time in a tmp
folder from the real published files in ../shared/datasets (never copied into the project): verified downloads,
a corrupted file or archive member refused and removed, a missing file named with its URL and status, ``--only``.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from apps.cli import app
from core.config import PROJECT_ROOT
from core.datasets import DATASETS

SHARED = (PROJECT_ROOT.parent / "shared" / "datasets").resolve()
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/datasets not present")

AI4I_ZIP = "ai4i+2020+predictive+maintenance+dataset.zip"
CMAPSS_ZIP = "6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip"
IMS_ZIP = "4.+Bearings.zip"
MIMII_ZIP = "dev_data_fan.zip"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def build_served(folder: Path) -> None:
    """The catalogue's downloads, laid out as a mirror: archives built around the real published files."""
    folder.mkdir()
    (folder / AI4I_ZIP).write_bytes(
        zip_bytes({"ai4i2020.csv": (SHARED / "ai4i2020" / "ai4i2020.csv").read_bytes()})
    )
    inner = zip_bytes(
        {
            "train_FD001.txt": (SHARED / "cmapss" / "train_FD001.txt").read_bytes(),
            "readme.txt": (SHARED / "cmapss" / "readme.txt").read_bytes(),
            "test_FD001.txt": b"1 1 0.0 0.0 100.0\n",  # another member: extracted, unverified
        }
    )
    (folder / CMAPSS_ZIP).write_bytes(
        zip_bytes({"6. Turbofan Engine Degradation Simulation Data Set/CMAPSSData.zip": inner})
    )
    raw = SHARED / "ims" / "raw"
    ims_inner = zip_bytes(
        {p.relative_to(raw).as_posix(): p.read_bytes() for p in raw.rglob("*") if p.is_file()}
    )
    (folder / IMS_ZIP).write_bytes(zip_bytes({"4. Bearings/IMS.zip": ims_inner}))
    shutil.copyfile(SHARED / "ims" / "features" / "test1_per_file.csv", folder / "test1_raw.csv")
    for mat in (SHARED / "cwru" / "12k_DE_0hp").glob("*.mat"):
        shutil.copyfile(mat, folder / mat.name)
    clips = {f"fan/test/{p.name}": p.read_bytes() for p in (SHARED / "mimii" / "id_00").glob("*.wav")}
    clips["fan/train/normal_id_00_00000000.wav"] = clips[
        "fan/test/normal_id_00_00000000.wav"
    ]  # not extracted
    (folder / MIMII_ZIP).write_bytes(zip_bytes(clips))


class Mirror:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[str] = []
        requests = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                requests.append(unquote(self.path.lstrip("/")))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    build_served(tmp_path / "served")
    served = Mirror(tmp_path / "served")
    yield served
    served.close()


def run(mirror: Mirror, dest: Path, *args: str):
    result = CliRunner().invoke(app, ["datasets", "--dest", str(dest), "--mirror", mirror.url, *args])
    return result


def leftovers(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.name.endswith(".part") or p.name.endswith(".extract")]


def test_only_downloads_the_named_datasets_verified(mirror: Mirror, tmp_path: Path) -> None:
    dest = tmp_path / "datasets"
    result = run(mirror, dest, "--only", "ai4i2020,cmapss")
    assert result.exit_code == 0, result.output
    csv = dest / "ai4i2020" / "ai4i2020.csv"
    assert sha256(csv) == sha256(SHARED / "ai4i2020" / "ai4i2020.csv")
    assert sha256(dest / "cmapss" / "train_FD001.txt") == sha256(SHARED / "cmapss" / "train_FD001.txt")
    assert (dest / "cmapss" / "readme.txt").is_file() and (dest / "cmapss" / "test_FD001.txt").is_file()
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith(".")) == [
        "SHA256SUMS.unverified", "ai4i2020", "cmapss"
    ]  # fmt: skip
    assert sorted(mirror.requests) == sorted([AI4I_ZIP, CMAPSS_ZIP])
    assert "licence: CC BY 4.0" in result.output and "Matzka" in result.output and "Saxena" in result.output
    assert "cmapss/test_FD001.txt" in (dest / "SHA256SUMS.unverified").read_text()
    assert not leftovers(dest)
    assert not (dest / ".downloads" / AI4I_ZIP).exists()  # the archive is removed after extraction


def test_every_dataset_from_a_mirror_then_nothing_again(mirror: Mirror, tmp_path: Path) -> None:
    dest = tmp_path / "datasets"
    result = run(mirror, dest)
    assert result.exit_code == 0, result.output
    for dataset in DATASETS.values():
        for relative, expected in dataset.verified_files().items():
            assert sha256(dest / relative) == expected, relative
    assert sorted(p.name for p in (dest / "mimii" / "id_00").iterdir()) == sorted(
        p.name for p in (SHARED / "mimii" / "id_00").iterdir()
    )
    assert "mimii/id_00/anomaly_id_00_00000000.wav" in (dest / "SHA256SUMS.unverified").read_text()
    assert not leftovers(dest)
    mirror.requests.clear()
    again = run(mirror, dest, "--only", "ai4i2020,cwru,ims")
    assert again.exit_code == 0, again.output
    assert mirror.requests == []  # verified files already present are not downloaded again
    assert "0 downloaded" in again.output and "already present" in again.output


def test_a_corrupted_file_is_refused_and_removed(mirror: Mirror, tmp_path: Path) -> None:
    served = mirror.folder / "105.mat"
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF
    served.write_bytes(bytes(data))
    dest = tmp_path / "datasets"
    result = run(mirror, dest, "--only", "cwru")
    assert result.exit_code == 1
    assert "checksum mismatch for 105.mat" in result.output and "refused and removed" in result.output
    assert not (dest / "cwru" / "12k_DE_0hp" / "105.mat").exists()
    assert not leftovers(dest)
    assert "failed: cwru" in result.output


def test_a_corrupted_archive_member_is_refused(mirror: Mirror, tmp_path: Path) -> None:
    text = (
        (SHARED / "ai4i2020" / "ai4i2020.csv")
        .read_bytes()
        .replace(b",0,0,0,0,0,0\r\n", b",0,0,0,0,0,1\r\n", 1)
    )
    (mirror.folder / AI4I_ZIP).write_bytes(zip_bytes({"ai4i2020.csv": text}))
    dest = tmp_path / "datasets"
    result = run(mirror, dest, "--only", "ai4i2020")
    assert result.exit_code == 1
    assert "ai4i2020.csv: checksum mismatch after extraction" in result.output
    assert not (dest / "ai4i2020" / "ai4i2020.csv").exists()
    assert not leftovers(dest)


def test_a_missing_file_names_its_url_and_status(mirror: Mirror, tmp_path: Path) -> None:
    (mirror.folder / "97.mat").unlink()
    dest = tmp_path / "datasets"
    result = run(mirror, dest, "--only", "cwru")
    assert result.exit_code == 1
    assert f"{mirror.url}/97.mat: HTTP 404" in result.output
    assert not (dest / "cwru" / "12k_DE_0hp" / "97.mat").exists()
    assert not leftovers(dest)


def test_an_archive_without_the_file_the_platform_reads_is_refused(mirror: Mirror, tmp_path: Path) -> None:
    (mirror.folder / AI4I_ZIP).write_bytes(zip_bytes({"other.csv": b"a,b\n1,2\n"}))
    result = run(mirror, tmp_path / "datasets", "--only", "ai4i2020")
    assert result.exit_code == 1
    assert "does not hold the file(s) the platform reads: ai4i2020/ai4i2020.csv" in result.output


def test_unknown_names_are_refused_before_any_download(mirror: Mirror, tmp_path: Path) -> None:
    result = run(mirror, tmp_path / "datasets", "--only", "ai4i2020,nasa")
    assert result.exit_code == 2
    assert "unknown dataset(s) nasa; known: ai4i2020, ims, cwru, cmapss, mimii" in result.output
    assert mirror.requests == []
