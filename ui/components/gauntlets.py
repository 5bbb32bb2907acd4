"""Headline tables of the gauntlet summaries (pure functions of the summary JSON; no Streamlit calls).

Each function takes a summary as ``GET /api/v1/ml/reports/{name}`` returns it and gives ``(title, table)``
pairs with human column names and units, plus short notes taken from the summary itself (its caveats and
conclusions), so that the page never invents a hint. Missing parts give no table rather than an error.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

Table = tuple[str, pd.DataFrame]

MODEL_LABELS = {
    "random_forest": "Random forest", "svc": "Support vector classifier", "lightgbm": "LightGBM",
    "pca": "PCA reconstruction", "gmm": "Gaussian mixture", "ae": "Autoencoder", "rf": "Random forest (supervised)",
    "isolation_forest": "Isolation forest", "one_class_svm": "One-class SVM",
}  # fmt: skip
FEATURE_LABELS = {"raw": "raw (5 process variables, type)",
                  "engineered": "engineered (raw + ΔT, power, wear × torque, limit margins)"}
RUN_LABELS = {"real": "real data", "generated": "generated data"}
INDICATOR_LABELS = {
    "rms": "RMS", "kurtosis": "Kurtosis", "env_bpfo": "Envelope at BPFO (outer race)",
    "env_bpfi": "Envelope at BPFI (inner race)", "env_bsf": "Envelope at BSF (ball)",
    "isolation_forest": "Isolation forest", "one_class_svm": "One-class SVM",
}  # fmt: skip
AI4I_METRICS = (("f1", "F1"), ("precision", "Precision"), ("recall", "Recall"), ("roc_auc", "ROC AUC"),
                ("pr_auc", "PR AUC"), ("accuracy", "Accuracy"))  # fmt: skip


def label(key: str, labels: dict[str, str]) -> str:
    return labels.get(key, key.replace("_", " "))


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _pm(mean: Any, std: Any, digits: int = 3) -> str | None:
    if not isinstance(mean, int | float):
        return None
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if isinstance(std, int | float) else "")


def _pct(value: Any, digits: int = 1) -> str | None:
    return f"{100 * value:.{digits}f} %" if isinstance(value, int | float) else None


def _num(value: Any, digits: int = 1) -> str | None:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else None


# --- AI4I 2020 classification ----------------------------------------------------------------------------------
def ai4i_tables(summary: dict[str, Any]) -> tuple[list[Table], list[str]]:
    tables: list[Table] = []
    notes: list[str] = []
    target = _get(summary, "reference", "target_f1")
    for run_key, run in (summary.get("runs") or {}).items():
        if not isinstance(run, dict):
            continue
        run_label = label(run_key, RUN_LABELS)
        rows = []
        for key, result in (run.get("models") or {}).items():
            model, _, features = key.partition("__")
            row = {"model": label(model, MODEL_LABELS), "features": label(features, FEATURE_LABELS)}
            for metric, name in AI4I_METRICS:
                row[f"{name} (CV mean ± sd)"] = _pm(_get(result, "mean", metric), _get(result, "std", metric))
            row["CV folds"] = str(result.get("folds") or "")
            rows.append(row)
        limits = run.get("published_limits_reference")
        if isinstance(limits, dict):
            row = {"model": "Published rule limits (reference ceiling)", "features": "—", "CV folds": ""}
            for metric, name in AI4I_METRICS:
                row[f"{name} (CV mean ± sd)"] = _pm(_get(limits, "mean", metric), None)
            rows.append(row)
        data = _get(run, "data") or {}
        if rows:
            title = f"Cross-validated models, {run_label} ({_num(data.get('rows'), 0)} rows, " \
                    f"{_num(data.get('failures'), 0)} failures)"  # fmt: skip
            tables.append((title, pd.DataFrame(rows)))
        champion, holdout = run.get("champion"), run.get("holdout")
        if isinstance(champion, dict) and isinstance(holdout, dict):
            metrics = holdout.get("metrics") or {}
            row = {
                "champion": f"{label(champion.get('model', ''), MODEL_LABELS)}, "
                f"{label(champion.get('feature_set', ''), FEATURE_LABELS)}",
                "hold-out rows": holdout.get("rows"),
                "hold-out failures": holdout.get("failures"),
            } | {f"{name} (hold-out)": _num(metrics.get(metric), 3) for metric, name in AI4I_METRICS}
            row["meets target F1"] = (
                None if champion.get("meets_target") is None
                else f"{'yes' if champion['meets_target'] else 'no'} (target {target})"
            )  # fmt: skip
            tables.append((f"Champion on the hold-out split, {run_label}", pd.DataFrame([row])))
        reason = _get(run, "registered", "promotion", "reason")
        if reason:
            notes.append(f"Registry ({run_label}): {reason}.")
    return tables, notes


# --- vibration (IMS / CWRU) ------------------------------------------------------------------------------------
def vibration_tables(summary: dict[str, Any]) -> tuple[list[Table], list[str]]:
    tables: list[Table] = []
    notes: list[str] = []
    simulation = summary.get("simulation") or {}
    indicators = simulation.get("per_indicator") or []
    if indicators:
        rows = [
            {
                "indicator": label(str(r.get("indicator")), INDICATOR_LABELS),
                "detected at file": r.get("detected_at_file"),
                "delay after onset (files)": r.get("delay_files"),
                "delay after onset (h)": _num(r.get("delay_hours"), 1),
                "false alarms, faulty bearing": r.get("false_alarms_faulty_bearing"),
                "false alarms, healthy bearings": r.get("false_alarms_healthy_bearings"),
            }
            for r in indicators
            if isinstance(r, dict)
        ]
        title = (
            f"Simulated run to failure: {simulation.get('fault', 'a bearing fault')}, onset at file "
            f"{simulation.get('onset_file')} of {simulation.get('files')} ({simulation.get('file_minutes')} min a file)"
        )
        tables.append((title, pd.DataFrame(rows)))
    ims = summary.get("ims") or {}
    if ims:
        rows = [
            {
                "IMS test": name.replace("_", " "),
                "files present": _get(test, "coverage", "files_present"),
                "files in a full run": _get(test, "coverage", "nominal_files_over_span"),
                "span (h)": _num(_get(test, "coverage", "span_hours"), 1),
                "pipeline": test.get("pipeline"),
            }
            for name, test in ims.items()
            if isinstance(test, dict)
        ]
        tables.append(("NASA IMS recordings (real data)", pd.DataFrame(rows)))
        notes += [f"IMS {name.replace('_', ' ')}: {test['conclusion']}" for name, test in ims.items()
                  if isinstance(test, dict) and test.get("conclusion")]  # fmt: skip
    models = summary.get("models") or {}
    rows = [
        {
            "detector": name.replace("_", " "),
            "registered as": m.get("model_name"),
            "version": m.get("version"),
            "true-positive rate (held out)": _pct(_get(m, "heldout_evidence", "tpr")),
            "false-positive rate (held out)": _pct(_get(m, "heldout_evidence", "fpr")),
            "Youden J": _num(_get(m, "heldout_evidence", "youden_j"), 3),
            "promoted": _get(m, "promotion", "promoted"),
        }
        for name, m in models.items()
        if isinstance(m, dict) and m.get("model_name")
    ]
    if rows:
        tables.append(("Registered IMS detectors", pd.DataFrame(rows)))
    accuracy = _get(summary, "diagnosis_simulated", "accuracy")
    if isinstance(accuracy, int | float):
        notes.append(f"Fault diagnosis on simulated signals: {_pct(accuracy, 0)} of the cases named correctly.")
    params = summary.get("params") or {}
    if "cwru_path" in params and not params.get("cwru_path"):
        notes.append("CWRU: this run was given no CWRU data (cwru_path not set), so it has no CWRU results.")
    return tables, notes


# --- audio (MIMII / DCASE) -------------------------------------------------------------------------------------
def audio_tables(summary: dict[str, Any]) -> tuple[list[Table], list[str]]:
    tables: list[Table] = []
    notes: list[str] = []
    for key, dataset in (summary.get("datasets") or {}).items():
        if not isinstance(dataset, dict):
            continue
        rows = [
            {
                "model": label(name, MODEL_LABELS),
                "mean AUC": _pct(m.get("mean_auc")),
                f"mean pAUC (FPR ≤ {summary.get('max_fpr', 0.1)})": _pct(m.get("mean_pauc")),
                "machine ids": len(m.get("by_id") or []),
                "fit time (s)": _num(m.get("fit_seconds"), 1),
            }
            for name, m in (dataset.get("models") or {}).items()
            if isinstance(m, dict)
        ]
        if rows:
            title = f"Machine-sound anomaly detection, {label(key, RUN_LABELS)} ({dataset.get('n_clips')} clips)"
            tables.append((title, pd.DataFrame(rows)))
        notes += [f"{label(key, RUN_LABELS).capitalize()}: {c}" for c in dataset.get("caveats") or []]
    reference = _get(summary, "reference", "auc_percent")
    if isinstance(reference, dict) and reference:
        frame = pd.DataFrame(
            [{"machine type": k, "baseline AUC": f"{v:.1f} %"} for k, v in reference.items()]
        )
        tables.append((f"Reference: {_get(summary, 'reference', 'what') or 'DCASE 2020 baseline'}", frame))
    return tables, notes


HEADLINES = {"ai4i": ai4i_tables, "vibration": vibration_tables, "audio": audio_tables}


def headline(name: str, summary: dict[str, Any] | None) -> tuple[list[Table], list[str]]:
    """The report's headline tables and notes; none for reports without a known layout or summary."""
    if not isinstance(summary, dict) or name not in HEADLINES:
        return [], []
    return HEADLINES[name](summary)


def plot_label(plot: str) -> str:
    """``real/confusion_matrix.png`` → ``real · confusion matrix``."""
    *folders, file = plot.removesuffix(".png").split("/")
    return " · ".join([*folders, file.replace("_", " ")])
