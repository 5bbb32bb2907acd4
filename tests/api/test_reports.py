"""The committed results the console reads through the API: ML reports (summaries and plots under docs/ml/) and
the demo datasets (data/), with their allow-lists (no path leaves the folders), 404s that say what produces a
missing file, and the read scope."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from apps.api.routers.reports import get_report_store
from core.config import PROJECT_ROOT, Settings
from core.ml.reports import REPORTS, ReportStore
from tests.api.auth_support import bootstrap_headers, create_key, serve_app

DOCS_ML = PROJECT_ROOT / "docs" / "ml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Stores:
    """The store the app uses; a test may swap it for one on a temporary folder."""

    def __init__(self) -> None:
        self.current = ReportStore()

    def __call__(self) -> ReportStore:
        return self.current


@pytest.fixture(scope="module")
def stores() -> Stores:
    return Stores()


@pytest.fixture(scope="module")
async def client(settings: Settings, stores: Stores) -> AsyncIterator[httpx.AsyncClient]:
    def customize(app: FastAPI) -> None:
        app.dependency_overrides[get_report_store] = stores

    async with serve_app(settings, customize) as (_, http):
        http.headers.update(bootstrap_headers(settings))
        yield http


@pytest.fixture
def tmp_store(stores: Stores, tmp_path: Path) -> Iterator[ReportStore]:
    """Empty docs/ml and data folders under tmp_path, served until the test ends."""
    (tmp_path / "ml").mkdir()
    (tmp_path / "data").mkdir()
    store = ReportStore(tmp_path / "ml", tmp_path / "data")
    stores.current = store
    yield store
    stores.current = ReportStore()


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


async def test_the_committed_reports_are_listed_with_their_plots(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/ml/reports")
    assert response.status_code == 200, response.text
    items = {item["name"]: item for item in response.json()["items"]}
    assert list(items) == list(REPORTS)
    ai4i = items["ai4i"]
    assert ai4i["summary_available"] and ai4i["summary_file"] == "ai4i_summary.json"
    assert ai4i["produced_by"] == "make classification-gauntlet"
    on_disk = sorted(p.relative_to(DOCS_ML / "ai4i").as_posix() for p in (DOCS_ML / "ai4i").rglob("*.png"))
    assert ai4i["plots"] == on_disk and "real/confusion_matrix.png" in on_disk
    assert items["eda"]["summary_available"] is False and items["eda"]["plots"]  # plots without a summary


async def test_a_report_carries_its_summary_as_written(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/ml/reports/audio")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == json.loads((DOCS_ML / "audio_summary.json").read_text(encoding="utf-8"))
    assert body["title"] == "Audio gauntlet (MIMII machine sounds)"


async def test_a_listed_plot_is_served_as_png(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/ml/reports/ai4i/plots/real/confusion_matrix.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_MAGIC)
    assert response.content == (DOCS_ML / "ai4i" / "real" / "confusion_matrix.png").read_bytes()


@pytest.mark.parametrize(
    "plot",
    [
        "../ai4i_summary.json",
        "..%2Fai4i_summary.json",
        "%2e%2e/%2e%2e/%2e%2e/core/config.py",
        "..%2F..%2F..%2Fpyproject.toml",
        "real/..%2F..%2F..%2F..%2Fdata%2Fsensor_data.csv",
        "%2Fetc%2Fpasswd",
        "real%5C..%5C..%5Cai4i_summary.json",
        "real/confusion_matrix.png%00.json",
        "real/missing.png",
        "../vibration/sim_detection.png",
        "README.md",
    ],
)
async def test_nothing_but_a_listed_plot_is_served(client: httpx.AsyncClient, plot: str) -> None:
    response = await client.get(f"/api/v1/ml/reports/ai4i/plots/{plot}")
    # 404 (no such plot) or 422 (a control character such as NUL in the name): never a file
    assert response.status_code in (404, 422), (plot, response.status_code, response.content[:200])
    assert not response.content.startswith(PNG_MAGIC)
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_plot_linked_from_outside_the_folder_is_neither_listed_nor_served(
    client: httpx.AsyncClient, tmp_store: ReportStore, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG_MAGIC + b"not for clients")
    (tmp_path / "ml" / "ai4i").mkdir()
    (tmp_path / "ml" / "ai4i" / "own.png").write_bytes(PNG_MAGIC + b"mine")
    (tmp_path / "ml" / "ai4i" / "leak.png").symlink_to(secret)
    listed = (await client.get("/api/v1/ml/reports/ai4i")).json()
    assert listed["plots"] == ["own.png"]
    assert (await client.get("/api/v1/ml/reports/ai4i/plots/own.png")).content == PNG_MAGIC + b"mine"
    _problem(await client.get("/api/v1/ml/reports/ai4i/plots/leak.png"), 404)


async def test_unknown_and_malformed_report_names(client: httpx.AsyncClient) -> None:
    problem = _problem(await client.get("/api/v1/ml/reports/nope"), 404)
    assert "nope" in problem["detail"] and "ai4i" in problem["detail"]
    _problem(await client.get("/api/v1/ml/reports/nope/plots/a.png"), 404)
    _problem(await client.get("/api/v1/ml/reports/..%2Fdata"), 404)  # the decoded "/" matches no route
    _problem(await client.get("/api/v1/ml/reports/AI4I"), 422)


async def test_a_missing_summary_says_what_produces_it(client: httpx.AsyncClient, tmp_store: ReportStore) -> None:
    body = (await client.get("/api/v1/ml/reports/vibration")).json()
    assert (body["summary_available"], body["summary"], body["plots"]) == (False, None, [])
    assert body["produced_by"] == "make vibration-gauntlet"


async def test_non_finite_numbers_become_null_and_a_broken_summary_is_a_404(
    client: httpx.AsyncClient, tmp_store: ReportStore
) -> None:
    (tmp_store.reports_dir / "ai4i_summary.json").write_text('{"f1": NaN, "runs": [Infinity, 0.5]}')
    body = (await client.get("/api/v1/ml/reports/ai4i")).json()
    assert body["summary"] == {"f1": None, "runs": [None, 0.5]}
    (tmp_store.reports_dir / "audio_summary.json").write_text('{"truncated": ')
    problem = _problem(await client.get("/api/v1/ml/reports/audio"), 404)
    assert "audio_summary.json" in problem["detail"] and "unreadable" in problem["detail"]


async def test_the_master_dataset_and_its_faults_are_served_as_csv(client: httpx.AsyncClient) -> None:
    listing = {d["name"]: d for d in (await client.get("/api/v1/datasets")).json()["items"]}
    assert listing["sensor_data"]["available"] is True
    assert listing["sensor_data"]["size_bytes"] == (PROJECT_ROOT / "data" / "sensor_data.csv").stat().st_size
    for name in ("sensor_data", "sensor_data_faults"):
        response = await client.get(f"/api/v1/datasets/{name}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert response.content == (PROJECT_ROOT / "data" / f"{name}.csv").read_bytes()
    _problem(await client.get("/api/v1/datasets/passwd"), 404)
    _problem(await client.get("/api/v1/datasets/..%2F..%2Fpyproject.toml"), 404)


async def test_a_missing_dataset_names_the_command_that_writes_it(
    client: httpx.AsyncClient, tmp_store: ReportStore
) -> None:
    listing = {d["name"]: d for d in (await client.get("/api/v1/datasets")).json()["items"]}
    assert listing["sensor_data"]["available"] is False and listing["sensor_data"]["size_bytes"] is None
    problem = _problem(await client.get("/api/v1/datasets/sensor_data"), 404)
    assert "export_sensor_data_csv.py" in problem["detail"]


async def test_reports_need_a_key_with_the_read_scope(client: httpx.AsyncClient, settings: Settings) -> None:
    _problem(await client.get("/api/v1/ml/reports", headers={"X-API-Key": ""}), 401)
    ingest_only = await create_key(client, settings, "ingest")
    for path in ("/api/v1/ml/reports", "/api/v1/ml/reports/ai4i/plots/real/roc_pr.png", "/api/v1/datasets/sensor_data"):
        _problem(await client.get(path, headers=ingest_only.headers), 403)
    reader = await create_key(client, settings, "read")
    assert (await client.get("/api/v1/datasets/sensor_data", headers=reader.headers)).status_code == 200
