"""The back-test's HTTP client of the platform API (httpx, synchronous: one request at a time, in time order).

* Every request is retried with exponential backoff (tenacity) on connection errors, 5xx and 429 (honouring
  ``Retry-After``); an ingest batch also on 409 (its ``Idempotency-Key`` is still being processed after a retry
  of a request that timed out). Any other 4xx ends the run with the API's problem detail.
* Set-up is idempotent: existing assets (by name) and sensors are reused; a sensor registered with another type,
  unit or asset than the spec is an error (``SetupConflict``) listing the differences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from core.backtest.report import iso
from core.backtest.specs import SensorPlan

PAGE = 1000


class ApiError(RuntimeError):
    """The platform refused or failed a request for good; the message is one line for the operator."""


class SetupConflict(ApiError):
    """Existing sensors do not match the specs (type, unit or asset)."""


class _Retryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def detail(response: httpx.Response) -> str:
    """The problem detail of an error response (or the start of its body)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        text = str(body.get("detail") or body.get("title") or body)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            text += f" ({errors[0]})"
        return text[:500]
    return str(body)[:300]


class PlatformClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 120.0,
        attempts: int = 8,
        retry_base_s: float = 0.5,
        retry_max_s: float = 30.0,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers={"X-API-Key": api_key}, timeout=timeout_s, trust_env=False
        )
        self.attempts = attempts
        self._wait = wait_exponential(multiplier=retry_base_s, min=retry_base_s, max=retry_max_s)
        self._on_retry = on_retry

    def close(self) -> None:
        self._http.close()

    # -- transport --------------------------------------------------------------------------------------------
    def _sleep_for(self, state: RetryCallState) -> float:
        backoff = float(self._wait(state))
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Retryable):
            retry_after = exc.response.headers.get("Retry-After", "")
            if retry_after.replace(".", "", 1).isdigit():
                return max(backoff, float(retry_after))
        return backoff

    def request(
        self, method: str, path: str, *, conflict_retryable: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """One request with retries; answers the final response (2xx or a non-retryable 4xx)."""

        def send() -> httpx.Response:
            response = self._http.request(method, path, **kwargs)
            code = response.status_code
            if code >= 500 or code == 429 or (conflict_retryable and code == 409):
                raise _Retryable(response)
            return response

        def before_sleep(state: RetryCallState) -> None:
            if self._on_retry is not None and state.outcome is not None:
                self._on_retry(f"{method} {path}: {state.outcome.exception()}; retrying")

        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self.attempts),
                wait=self._sleep_for,
                retry=retry_if_exception_type((httpx.TransportError, _Retryable)),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    return send()
        except _Retryable as exc:
            raise ApiError(
                f"{method} {path}: HTTP {exc.response.status_code} after {self.attempts} attempts: "
                f"{detail(exc.response)}"
            ) from None
        except httpx.TransportError as exc:
            raise ApiError(
                f"{method} {self.base_url}{path}: {type(exc).__name__} after {self.attempts} attempts "
                f"({exc or 'no answer'})"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, path: str, what: str, ok: Sequence[int] = (200,), **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code not in ok:
            raise ApiError(f"{what}: HTTP {response.status_code}: {detail(response)}")
        return response.json()

    def _pages(self, path: str, what: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self._json("GET", path, what, params={**params, "limit": PAGE, "offset": len(items)})
            items.extend(page["items"])
            if not page["items"] or len(items) >= page["total"]:
                return items

    # -- checks and events ------------------------------------------------------------------------------------
    def events_status(self) -> dict[str, Any]:
        response = self.request("GET", "/api/v1/admin/events")
        if response.status_code in (401, 403):
            raise ApiError(
                f"the API key was refused (HTTP {response.status_code}: {detail(response)}); the back-test "
                "needs a key with the admin scope (--api-key, default SM_API_KEY)"
            )
        if response.status_code == 404:
            raise ApiError(
                f"{self.base_url} has no /api/v1/admin/events: the platform is older than the back-test"
            )
        if response.status_code != 200:
            raise ApiError(f"GET /api/v1/admin/events: HTTP {response.status_code}: {detail(response)}")
        return response.json()  # type: ignore[no-any-return]

    def dead_letters_pending(self) -> int:
        page = self._json(
            "GET", "/api/v1/admin/dead-letters", "dead letters", params={"replayed": "false", "limit": 1}
        )
        return int(page["total"])

    # -- set-up -----------------------------------------------------------------------------------------------
    def ensure_assets(self, names: Sequence[str]) -> dict[str, int]:
        """Asset name → id, creating the missing ones (existing ones are reused)."""
        known = {a["name"]: int(a["id"]) for a in self._pages("/api/v1/assets", "assets", {"sort": "id"})}
        for name in names:
            if name in known:
                continue
            response = self.request("POST", "/api/v1/assets", json={"name": name})
            if response.status_code == 201:
                known[name] = int(response.json()["id"])
            elif response.status_code == 409:  # created meanwhile
                known = {
                    a["name"]: int(a["id"]) for a in self._pages("/api/v1/assets", "assets", {"sort": "id"})
                }
            else:
                raise ApiError(f"creating asset {name!r}: HTTP {response.status_code}: {detail(response)}")
        return {name: known[name] for name in names}

    def ensure_sensors(self, plans: Sequence[SensorPlan], asset_ids: dict[str, int]) -> int:
        """Register the sensors; returns how many existed already. Conflicting registrations: ``SetupConflict``."""
        conflicts: list[str] = []
        existing = 0
        for plan in plans:
            body: dict[str, Any] = {
                "sensor_id": plan.sensor_id,
                "type": plan.type,
                "asset_id": asset_ids[plan.asset],
            }
            if plan.unit is not None:
                body["unit"] = plan.unit
            response = self.request("POST", "/api/v1/sensors", json=body)
            if response.status_code == 201:
                continue
            if response.status_code != 409:
                raise ApiError(
                    f"registering sensor {plan.sensor_id!r}: HTTP {response.status_code}: {detail(response)}"
                )
            existing += 1
            found = self._json("GET", f"/api/v1/sensors/{plan.sensor_id}", f"sensor {plan.sensor_id!r}")
            differences = []
            if found.get("type") != plan.type:
                differences.append(f"type {found.get('type')!r} (spec {plan.type!r})")
            if plan.unit is not None and (found.get("unit") or "") != plan.unit:
                differences.append(f"unit {found.get('unit')!r} (spec {plan.unit!r})")
            if found.get("asset_id") != asset_ids[plan.asset]:
                differences.append(
                    f"asset id {found.get('asset_id')} (spec {plan.asset!r} = {asset_ids[plan.asset]})"
                )
            if differences:
                conflicts.append(f"{plan.sensor_id}: " + ", ".join(differences))
        if conflicts:
            raise SetupConflict(
                f"{len(conflicts)} sensor(s) already registered differently — {'; '.join(conflicts[:5])}"
                + (f"; … ({len(conflicts) - 5} more)" if len(conflicts) > 5 else "")
                + ". Fix the registration (PATCH /api/v1/sensors/ID) or the --sensor-type / --asset-pattern specs."
            )
        return existing

    # -- replay -----------------------------------------------------------------------------------------------
    def ingest(self, readings: list[dict[str, Any]], idempotency_key: str, what: str) -> dict[str, Any]:
        """``POST /api/v1/data/ingest?backfill=true``; answers ``{accepted, duplicates, rejected}``."""
        response = self.request(
            "POST",
            "/api/v1/data/ingest",
            params={"backfill": "true"},
            content=orjson.dumps(readings),
            headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
            conflict_retryable=True,
        )
        if response.status_code != 202:
            raise ApiError(f"ingest of {what}: HTTP {response.status_code}: {detail(response)}")
        return response.json()  # type: ignore[no-any-return]

    # -- results ----------------------------------------------------------------------------------------------
    def first_anomalies(self, sensor_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        """The page of the sensor's earliest anomaly in ``[start, end]``; its ``total`` counts them all."""
        params = {
            "sensor_id": sensor_id,
            "start": iso(start),
            "end": iso(end + timedelta(microseconds=1)),  # the API's end is exclusive
            "sort": "timestamp",
            "limit": 1,
        }
        return self._json("GET", "/api/v1/anomalies", f"anomalies of {sensor_id}", params=params)  # type: ignore[no-any-return]

    def anomalies(self, sensor_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every anomaly of the sensor in ``[start, end]``, oldest first (for the plot)."""
        params = {
            "sensor_id": sensor_id,
            "start": iso(start),
            "end": iso(end + timedelta(microseconds=1)),
            "sort": "timestamp",
        }
        return self._pages("/api/v1/anomalies", f"anomalies of {sensor_id}", params)

    def alerts(self, sensor_id: str) -> list[dict[str, Any]]:
        return self._pages("/api/v1/alerts", f"alerts of {sensor_id}", {"sensor_id": sensor_id, "sort": "id"})

    def work_orders(self, asset_id: int) -> list[dict[str, Any]]:
        return self._pages(
            "/api/v1/maintenance/tasks", f"work orders of asset {asset_id}",
            {"asset_id": asset_id, "sort": "id", "order": "asc"},
        )  # fmt: skip


__all__ = ["ApiError", "PlatformClient", "SetupConflict", "detail"]
