"""ChampionModels on the in-memory registry (core.ml.registry.memory): one lookup per type, one load per version,
refresh when due, registry outages tolerated (cached champions kept, logged once), model output contract."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.anomaly.champion import Champion, ChampionModels, registered_model_name
from core.ml.registry.memory import InMemoryRegistry
from core.ml.registry.port import CHAMPION, ModelNotFound


class StubRegistry(InMemoryRegistry):
    """The in-memory registry with ``versions[name] = version`` (or None) naming the champion; version ``n`` of
    ``name`` holds the model ``"<name>@<n>"``."""

    def __init__(self) -> None:
        super().__init__()
        self.versions = Champions(self)

    @property
    def lookups(self) -> list[str]:
        return [call[1] for call in self.calls if call[0] == "alias_version"]

    @property
    def loads(self) -> list[tuple[str, str]]:
        return [(call[1], call[2]) for call in self.calls if call[0] == "load"]


class Champions:
    """``versions[name] = "2"`` registers versions 1…2 as needed and moves the champion alias; None removes it."""

    def __init__(self, registry: InMemoryRegistry) -> None:
        self.registry = registry

    def __setitem__(self, name: str, version: str | None) -> None:
        if version is None:
            self.registry.delete_alias(name, CHAMPION)
            return
        for number in range(1, int(version) + 1):
            try:
                self.registry.require_version(name, str(number))
            except ModelNotFound:
                assert self.registry.register(name, f"{name}@{number}") == str(number)
        self.registry.set_alias(name, CHAMPION, version)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_lookup_once_per_type_and_load_once_per_version() -> None:
    registry = StubRegistry()
    registry.versions["anomaly_temperature"] = "1"
    models = ChampionModels(registry)
    await models.ensure(["temperature", "vibration"])
    await models.ensure(["temperature", "vibration"])
    assert sorted(registry.lookups) == ["anomaly_temperature", "anomaly_vibration"]
    assert models.get("temperature") == Champion("anomaly_temperature", "1", "anomaly_temperature@1")
    assert models.get("vibration") is None
    await models.refresh()
    assert registry.loads == [("anomaly_temperature", "1")]  # alias unchanged: no reload


async def test_refresh_runs_in_the_background_when_due() -> None:
    registry, clock = StubRegistry(), Clock()
    registry.versions["anomaly_temperature"] = "1"
    models = ChampionModels(registry, refresh_s=60.0, clock=clock)
    await models.ensure(["temperature"])
    registry.versions["anomaly_temperature"] = "2"
    clock.now = 30.0
    models.refresh_if_due()
    assert models._refresh_task is None  # not due yet
    clock.now = 61.0
    models.refresh_if_due()
    task = models._refresh_task
    assert task is not None
    models.refresh_if_due()  # one refresh at a time
    assert models._refresh_task is task
    await asyncio.wait_for(task, 5)
    assert models.get("temperature").version == "2"  # type: ignore[union-attr]
    assert registry.loads == [("anomaly_temperature", "1"), ("anomaly_temperature", "2")]
    await models.aclose()


async def test_outage_keeps_cached_champions_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    registry = StubRegistry()
    registry.versions["anomaly_temperature"] = "1"
    models = ChampionModels(registry)
    await models.ensure(["temperature"])
    registry.reachable = False
    with caplog.at_level(logging.WARNING, logger="core.anomaly.champion"):
        await models.refresh()
        await models.refresh()
        await models.ensure(["pressure"])
    assert models.get("temperature").version == "1"  # type: ignore[union-attr]
    assert models.get("pressure") is None and "pressure" in models.known_types()
    assert len([r for r in caplog.records if "unavailable" in r.message]) == 1
    registry.reachable = True
    registry.versions["anomaly_pressure"] = "7"
    await models.refresh()
    assert models.get("pressure").version == "7"  # type: ignore[union-attr]


async def test_a_failed_load_keeps_the_current_champion_and_a_removed_alias_drops_it() -> None:
    registry = StubRegistry()
    registry.versions["anomaly_temperature"] = "1"
    models = ChampionModels(registry)
    await models.ensure(["temperature"])
    registry.versions["anomaly_temperature"] = "2"
    registry.failing_loads[("anomaly_temperature", "2")] = OSError("corrupt artifact")
    await models.refresh()
    assert models.get("temperature").version == "1"  # type: ignore[union-attr]
    registry.versions["anomaly_temperature"] = None
    await models.refresh()
    assert models.get("temperature") is None


async def test_a_slow_registry_times_out_to_the_baseline() -> None:
    registry = StubRegistry()
    registry.versions["anomaly_temperature"] = "1"  # what the late answer loads, after the test

    def slow(name: str, alias: str) -> str:
        import time

        time.sleep(0.5)
        return "1"

    registry.alias_version = slow  # type: ignore[method-assign]
    models = ChampionModels(registry, timeout_s=0.05)
    await models.ensure(["temperature"])
    assert models.get("temperature") is None


def frame(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sensor_id": ["s"] * len(values),
            "timestamp": pd.date_range("2026-01-01", periods=len(values), freq="min", tz="UTC"),
            "value": values,
        }
    )


class Predictor:
    def __init__(self, output: Any) -> None:
        self.output = output

    def predict(self, data: pd.DataFrame) -> Any:
        return self.output


@pytest.mark.parametrize(
    ("output", "flags"),
    [
        (pd.DataFrame({"score": [1.0, 9.0], "is_anomaly": [True, False]}), [True, False]),
        (pd.DataFrame({"score": [1.0, 9.0]}), [False, True]),
        (np.array([1.0, 9.0]), [False, True]),
        (pd.Series([1.0, 9.0]), [False, True]),
        (np.array([[1.0, 1.0], [9.0, 0.0]]), [True, False]),
    ],
)
def test_model_output_forms(output: Any, flags: list[bool]) -> None:
    scores, got = Champion("m", "1", Predictor(output)).score(frame([1.0, 2.0]), threshold=6.0)
    assert list(scores) == [1.0, 9.0]
    assert list(got) == flags


def test_model_output_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="3 scores for 2 readings"):
        Champion("m", "1", Predictor(np.array([1.0, 2.0, 3.0]))).score(frame([1.0, 2.0]), threshold=6.0)


def test_registered_model_name() -> None:
    assert registered_model_name("temperature") == "anomaly_temperature"
