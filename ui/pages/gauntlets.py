"""Gauntlets and experiments: the summaries and plots the notebooks write under ``docs/ml/`` (read-only files,
not the database nor the API), and a link to the MLflow UI. A missing summary is said, not hidden."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.config import PROJECT_ROOT
from ui.components import api

DOCS_ML = PROJECT_ROOT / "docs" / "ml"
#: section → (title, summary file names tried in order, plot folders, make target that produces it)
SECTIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "ai4i": ("AI4I 2020 classification gauntlet", ("ai4i_summary.json", "ai4i/summary.json"), ("ai4i",),
             "make classification-gauntlet"),
    "vibration": ("Vibration gauntlet (bearing run-to-failure)", ("vibration_summary.json", "vibration/summary.json"),
                  ("vibration",), "make vibration-gauntlet"),
    "audio": ("Audio gauntlet (machine sounds)", ("audio_summary.json", "audio/summary.json"), ("audio",),
              "make audio-gauntlet"),
    "anomaly": ("Anomaly models", ("anomaly_summary.json", "anomaly/summary.json"), ("anomaly",),
                "make train-anomaly"),
    "forecast": ("Forecast models", ("forecast_summary.json", "forecast/summary.json"), ("forecast",),
                 "make train-forecast"),
    "eda": ("Data exploration", ("eda_summary.json", "eda/summary.json"), ("eda",), "notebook 01"),
}  # fmt: skip
MAX_PLOTS = 12


@st.cache_data(ttl=60, show_spinner=False)
def read_json(path: str, modified: float) -> Any:
    del modified  # cache key: a rewritten file is read again
    return json.loads(Path(path).read_text(encoding="utf-8"))


def scalars(summary: Any, prefix: str = "") -> dict[str, Any]:
    """The summary's numbers and short strings, flattened to dotted keys (nested lists are left to the JSON)."""
    out: dict[str, Any] = {}
    if isinstance(summary, dict):
        for key, value in summary.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                out |= scalars(value, name + ".")
            elif isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 80):
                out[name] = value
    return out


METRIC_WORDS = re.compile(r"(^|[._])(f1|auc|roc_auc|pr_auc|pauc|precision|recall|accuracy|mae|rmse|mape|smape|"
                          r"coverage|lead|alarm)", re.IGNORECASE)  # fmt: skip


def is_metric(field: str, value: Any) -> bool:
    """A measured number (not a reference value or a parameter) whose name says it is a metric."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return bool(METRIC_WORDS.search(field.rsplit(".", 1)[-1])) and not field.startswith(
        ("reference.", "params.")
    )


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per result path (``runs.real.models.rf.mean``), one column per metric name (``f1``, ``roc_auc``)."""
    rows = pd.DataFrame(
        [(k.rsplit(".", 1)[0] if "." in k else "", k.rsplit(".", 1)[-1], v) for k, v in metrics.items()],
        columns=["result", "metric", "value"],
    )
    return rows.pivot_table(index="result", columns="metric", values="value", aggfunc="first", sort=False)


st.title("Gauntlets and experiments")
settings = api.settings_or_stop()
tracking = settings.mlflow_tracking_uri
if tracking.startswith(("http://", "https://")):
    st.markdown(f"Every run, its parameters, metrics and artifacts are in the **[MLflow UI]({tracking})**.")
else:
    st.caption(f"MLflow tracking store: {tracking} (no UI served at a URL)")

for title, summary_names, plot_dirs, target in SECTIONS.values():
    st.header(title)
    summary_path = next((DOCS_ML / n for n in summary_names if (DOCS_ML / n).is_file()), None)
    if summary_path is None:
        st.warning(f"No summary yet (`docs/ml/{summary_names[0]}` is missing). Produce it with `{target}`.")
    else:
        try:
            summary = read_json(str(summary_path), summary_path.stat().st_mtime)
        except (OSError, ValueError) as exc:
            st.error(f"{summary_path.relative_to(PROJECT_ROOT)} is unreadable: {exc}")
        else:
            st.caption(f"from {summary_path.relative_to(PROJECT_ROOT)}")
            flat = scalars(summary)
            headline = {k: v for k, v in flat.items() if is_metric(k, v)}
            if headline:
                st.markdown("**Metrics**")
                table = metrics_table(headline)
                st.dataframe(table, width="stretch", height=min(38 + 35 * len(table), 420))
            if flat:
                with st.expander(f"All {len(flat)} fields"):
                    st.dataframe(pd.DataFrame({"field": list(flat), "value": [str(v) for v in flat.values()]}),
                                 hide_index=True, width="stretch")  # fmt: skip
            with st.expander("Full summary (JSON)"):
                st.json(summary, expanded=False)
    plots = sorted(p for d in plot_dirs if (DOCS_ML / d).is_dir() for p in (DOCS_ML / d).rglob("*.png"))
    if plots:
        columns = st.columns(2)
        for index, plot in enumerate(plots[:MAX_PLOTS]):
            columns[index % 2].image(str(plot), caption=str(plot.relative_to(DOCS_ML)))
        if len(plots) > MAX_PLOTS:
            st.caption(f"{len(plots) - MAX_PLOTS} more plots under docs/ml/{plot_dirs[0]}/")
    elif summary_path is not None:
        st.caption("no plots")
