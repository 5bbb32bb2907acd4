"""Models: registered models, versions, aliases and metrics (``GET /api/v1/ml/models``); for forecast models the
interval's coverage measured on the test folds beside its nominal level; champion against challenger; promotion
(admin); drift status per sensor type (``GET /api/v1/ml/drift``).

The ML endpoints are optional for the console: when the API does not serve them (404) the page says so."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiError
from ui.components import actions, api
from ui.components.charts import interval_coverage_rows

PROMOTE_CLI = "python -m apps.cli models promote NAME VERSION"

st.title("Models")
actions.show_flash()


def _items(body: Any, *keys: str) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return [b for b in body if isinstance(b, dict)]
    if isinstance(body, dict):
        for key in keys:
            if isinstance(body.get(key), list):
                return [b for b in body[key] if isinstance(b, dict)]
    return []


def _aliases(model: dict[str, Any]) -> dict[str, str]:
    """alias → version, from the model's ``aliases`` mapping or from each version's ``aliases`` list."""
    found = (
        {k: str(v) for k, v in (model.get("aliases") or {}).items()}
        if isinstance(model.get("aliases"), dict)
        else {}
    )
    for version in model.get("versions") or []:
        for alias in version.get("aliases") or []:
            found.setdefault(alias, str(version.get("version")))
    return found


try:
    models = _items(api.get("/api/v1/ml/models", timeout=api.slow_timeout()), "items", "models")
except ApiError as exc:
    models = None
    if exc.status == 404:
        st.warning(
            "The API does not serve `/api/v1/ml/models` (HTTP 404): model serving is not deployed in this API "
            "version. Registered models are listed by `python -m apps.cli models list`."
        )
    else:
        api.show_error(exc, "the registered models")

if models is not None and not models:
    st.info(
        "No registered model yet. Train one: `make train-anomaly`, `make train-forecast` or a gauntlet target."
    )
for model in models or []:
    name = model.get("name", "?")
    aliases = _aliases(model)
    versions = model.get("versions") or []
    with st.expander(f"{name} · {len(versions)} versions · " + (", ".join(f"{a}=v{v}" for a, v in aliases.items())
                                                                or "no alias"), expanded=True):  # fmt: skip
        rows = [
            {"version": str(v.get("version")), "aliases": ", ".join(v.get("aliases") or []),
             "created_at": v.get("created_at"), "run_id": v.get("run_id"), **(v.get("metrics") or {})}
            for v in versions
        ]  # fmt: skip
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        if name.startswith("forecast_") and versions:
            st.markdown("**Forecast interval coverage** (share of the test folds' readings inside the interval)")
            st.dataframe(pd.DataFrame(interval_coverage_rows(versions)), hide_index=True, width="stretch")
            st.caption(
                "Intervals are conformally calibrated through the backtest folds: each test origin only from the "
                "folds before it (versions trained before issue 16 part 3: split-conformal on the validation "
                "folds); the test folds chose nothing. Raw = the method's own interval before calibration."
            )
        champion, challenger = aliases.get("champion"), aliases.get("challenger")
        if champion and challenger and champion != challenger:
            by_version = {str(v.get("version")): v.get("metrics") or {} for v in versions}
            metrics = sorted(set(by_version.get(champion, {})) | set(by_version.get(challenger, {})))
            st.markdown(f"**Champion v{champion} against challenger v{challenger}**")
            st.dataframe(
                pd.DataFrame({"metric": metrics,
                              f"champion v{champion}": [by_version.get(champion, {}).get(m) for m in metrics],
                              f"challenger v{challenger}": [by_version.get(challenger, {}).get(m) for m in metrics]}),
                hide_index=True, width="stretch",
            )  # fmt: skip
        if versions:
            left, middle, right = st.columns([2, 1, 1])
            version = left.selectbox(
                "Version to promote", [str(v.get("version")) for v in versions], key=f"v_{name}"
            )
            force = middle.checkbox("Force (skip evaluation)", key=f"force_{name}")
            if right.button(
                "Promote", key=f"promote_{name}", help="admin scope; evaluates both unless forced"
            ):
                try:
                    answer = api.send("POST", f"/api/v1/ml/models/{name}/promote",
                                      json={"version": version, "force": force},
                                      timeout=api.slow_timeout())  # fmt: skip
                except ApiError as exc:
                    if exc.status == 405 or (exc.status == 404 and exc.detail.startswith("No resource")):
                        st.warning(f"The API has no promotion endpoint (HTTP {exc.status}: {exc.detail}). "
                                   f"Promote with `{PROMOTE_CLI}`.")  # fmt: skip
                    else:
                        api.show_error(exc, f"the promotion of {name} v{version}")
                else:
                    verdict = "promoted to champion" if answer.get("promoted") else "not promoted"
                    actions.flash(
                        "success", f"{name} v{version}: {verdict}. {answer.get('reason', '')}".strip()
                    )
                    st.rerun()


def drift_by_type(checks: list[dict[str, Any]], time_column: str) -> pd.DataFrame:
    """One row per sensor type: sensors checked, drifted, skipped (too few readings), worst PSI and KS p-value."""
    data = pd.DataFrame(checks)
    data["drifted"] = data["drifted"].fillna(False).astype(bool) if "drifted" in data else False
    data["checked"] = data["psi"].notna() if "psi" in data else False
    by_type = data.groupby("sensor_type").agg(
        sensors=("sensor_id", "nunique"), checked=("checked", "sum"), drifted=("drifted", "sum"),
        max_psi=("psi", "max"), min_ks_pvalue=("ks_pvalue", "min"), window_end=(time_column, "max"),
    ).reset_index()  # fmt: skip
    by_type.insert(1, "status", ["⚠️ drift" if n else "✅ stable" for n in by_type["drifted"]])
    return by_type


st.subheader("Drift")
st.caption("KS test and PSI of each sensor's recent window against its reference window, per sensor type.")
if st.button("Check drift now (every sensor)", key="drift_check"):
    try:
        answer = api.send("POST", "/api/v1/ml/check_drift", json={}, timeout=api.slow_timeout())
    except ApiError as exc:
        api.show_error(exc, "a drift check")
    else:
        st.session_state["drift_results"] = answer
fresh = st.session_state.get("drift_results")
if fresh and fresh.get("results"):
    thresholds = fresh.get("thresholds") or {}
    st.markdown(
        f"**Check just run** (location drift: autocorrelation-corrected KS p < {thresholds.get('ks_pvalue')} "
        "and a median shift of ≥ 2 robust SD; spread drift: Brown–Forsythe on first differences; PSI reported; "
        "the API's `reasons` say what fired)"
    )
    st.dataframe(drift_by_type(fresh["results"], "recent_end"), hide_index=True, width="stretch")
    with st.expander("Per sensor (check just run)"):
        st.dataframe(pd.DataFrame(fresh["results"]), hide_index=True, width="stretch")

try:
    drift = api.get("/api/v1/ml/drift", timeout=api.slow_timeout())
except ApiError as exc:
    drift = None
    if exc.status == 404:
        st.warning("The API does not serve `/api/v1/ml/drift` (HTTP 404): no drift status available.")
    else:
        api.show_error(exc, "the drift status")
checks = _items(drift, "items")
st.markdown("**Last stored checks** (drift agent)")
if drift is not None and not checks:
    st.info("No stored drift check yet (the drift agent runs every SM_DRIFT_CHECK_INTERVAL_S).")
if checks:
    st.dataframe(drift_by_type(checks, "checked_at"), hide_index=True, width="stretch")
    with st.expander("Per sensor (stored)"):
        st.dataframe(pd.DataFrame(checks), hide_index=True, width="stretch")
