"""Gauntlets and experiments: the headline figures of the gauntlets (AI4I classification, IMS/CWRU vibration,
MIMII audio) as tables with human labels and units, the training notebooks' plots, all from the API
(``GET /api/v1/ml/reports``, ``/ml/reports/{name}``, ``/ml/reports/{name}/plots/{plot}``). A plot is fetched
only when chosen; the full summary is one expander away. A missing report says which command produces it."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.api_client import ApiError
from ui.components import api
from ui.components.gauntlets import headline, plot_label

REPORTS = "/api/v1/ml/reports"
NO_PLOT = "—"


def show_plots(report: dict[str, Any]) -> None:
    """A selectbox of the report's plots; only the chosen one is fetched and drawn."""
    plots: list[str] = report.get("plots") or []
    if not plots:
        st.caption("No plots.")
        return
    choice = st.selectbox(
        f"Plots ({len(plots)})", [NO_PLOT, *plots], format_func=lambda p: "choose a plot" if p == NO_PLOT
        else plot_label(p), key=f"plot_{report['name']}",
    )  # fmt: skip
    if choice == NO_PLOT:
        return
    try:
        image = api.get_bytes(f"{REPORTS}/{report['name']}/plots/{choice}")
    except ApiError as exc:
        api.show_error(exc, f"the plot {choice}")
        return
    st.image(image, caption=plot_label(choice))


def show_report(info: dict[str, Any]) -> None:
    name = info["name"]
    st.header(info["title"])
    if not info.get("summary_available"):
        if info["kind"] == "gauntlet":
            st.info(f"Not run yet: `{info['produced_by']}` writes its summary.")
        else:
            st.caption(f"Plots written by `{info['produced_by']}` (no summary file; the figures are in MLflow).")
        show_plots(info)
        return
    report = api.load(f"{REPORTS}/{name}", f"the {name} report")
    if report is None:
        return
    st.caption(f"From docs/ml/{report['summary_file']}, written {str(report.get('updated_at', ''))[:16]} UTC "
               f"by `{report['produced_by']}`.")  # fmt: skip
    tables, notes = headline(name, report.get("summary"))
    for title, table in tables:
        st.markdown(f"**{title}**")
        st.dataframe(table, hide_index=True, width="stretch")
    for note in notes:
        st.caption(note)
    show_plots(report)
    with st.expander("Full summary (JSON)"):
        st.json(report.get("summary"), expanded=False)


st.title("Gauntlets and experiments")
settings = api.settings_or_stop()
if settings.mlflow_ui_url.startswith(("http://", "https://")):
    st.markdown(
        f"Every run, its parameters, metrics and artifacts are in the **[MLflow UI]({settings.mlflow_ui_url})**."
    )
listing = api.load(REPORTS, "the ML reports")
if listing is None:
    st.stop()
reports = listing.get("items") or []
gauntlets = [r for r in reports if r.get("kind") == "gauntlet"]
training = [r for r in reports if r.get("kind") != "gauntlet"]
tab_gauntlets, tab_training = st.tabs(["Gauntlets (public benchmarks)", "Training reports (platform models)"])
with tab_gauntlets:
    st.caption(
        "Each gauntlet runs the platform's modelling on public data (and on generated data of the same shape) "
        "and compares it with published figures."
    )
    for info in gauntlets:
        show_report(info)
with tab_training:
    for info in training:
        show_report(info)
