"""Notebook 06 in one call: :func:`run_gauntlet` runs the simulator study, the diagnosis check on simulated
defects, the IMS excerpt (every run directory found) and optional CWRU files; writes the figures and the summary
JSON; logs one MLflow parent run with one nested run per model and registers the IMS detectors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.ml.eda.plots import save_figures
from core.ml.vibration.alarms import AlarmConfig
from core.ml.vibration.bearings import IMS_RPM, REXNORD_ZA_2115, SKF_6205
from core.ml.vibration.diagnosis import Diagnosis, diagnose
from core.ml.vibration.diagnosis_grid import cwru_label
from core.ml.vibration.gauntlet import ims_study, run_coverage, signal_levels, simulation_study
from core.ml.vibration.models import MODEL_KINDS
from core.ml.vibration.plots import plot_envelope_spectra, plot_health_timelines, plot_simulator_detection
from core.ml.vibration.promotion import build_evidence
from core.ml.vibration.readers import IMS_FS, list_ims_run, list_ims_tests, read_cwru_mat, read_ims_file
from core.ml.vibration.simulator import FAULT_NAMES, simulate_signal

REFERENCE = {
    "ims_test2_bearing1_rms_alarm_file": 530,
    "ims_test2_bearing1_rms_alarm_hours_before_end": 75,
    "ims_test2_files": 984,
    "note": "RMS-based alarms fire around file 530 of IMS test 2 for bearing 1 (outer-race failure), ~75 h "
    "before the end of the run (issue 6).",
    "skf6205_orders_published": {"bpfo": 3.585, "bpfi": 5.415, "bsf": 2.357, "ftf": 0.398},
}
PLOT_INDICATORS = ("rms", "kurtosis", "env_bpfo", "isolation_forest")


@dataclass
class GauntletResult:
    summary: dict[str, Any]
    figures: dict[str, Path] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    run_id: str | None = None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records


def diagnosis_check(
    seeds: int = 3, severities: tuple[float, ...] = (0.15, 0.08), fs: float = 12_000.0, rpm: float = 1797.0
) -> dict[str, Any]:
    """Simulated healthy / outer / inner / ball signals of a 6205 at 12 kHz (2 s each, noise SD 0.05 g, impact
    amplitude ``severities`` in g) → diagnosis; accuracy overall and per severity (healthy cases in each)."""
    rows: list[dict[str, Any]] = []
    spectra: dict[str, Diagnosis] = {}
    for severity in severities:
        for seed in range(seeds):
            for fault in ("none", "outer", "inner", "ball"):
                x = simulate_signal(
                    fault, fs=fs, rpm=rpm, n_samples=int(2 * fs), severity=severity, rng=1000 + seed
                )
                d = diagnose(x, fs, rpm, SKF_6205)
                scores = {f"score_db_{k.replace(' ', '_')}": round(v, 2) for k, v in d.scores_db.items()}
                rows.append(
                    {"severity_g": severity, "seed": seed, "true": FAULT_NAMES[fault], "predicted": d.fault}
                    | scores
                    | {"threshold_db": round(d.threshold_db, 2)}
                )
                if seed == 0 and severity == severities[0]:
                    label = "healthy" if fault == "none" else f"{FAULT_NAMES[fault]} defect, {severity} g"
                    spectra[f"simulated {label}"] = d
    table = pd.DataFrame(rows)
    hit = table["true"] == table["predicted"]
    by_severity = {str(s): float(hit[table["severity_g"] == s].mean()) for s in severities}
    return {
        "table": table,
        "accuracy": float(hit.mean()),
        "accuracy_by_severity": by_severity,
        "spectra": spectra,
    }


def _ims_section(
    root: Path, out: Path, *, window: int, overlap: float, max_files: int | None, cfg: AlarmConfig
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    section: dict[str, Any] = {}
    studies: dict[str, Any] = {}
    spectra: dict[str, Any] = {}  # test → {label: Diagnosis}
    for test, directory in list_ims_tests(root).items():
        entry: dict[str, Any] = {"coverage": run_coverage(str(directory))}
        levels = signal_levels(str(directory))
        entry["rms_per_file_channel"] = _records(levels.round(4))
        try:
            study = ims_study(str(directory), max_files=max_files, window=window, overlap=overlap, config=cfg)
        except ValueError as exc:
            entry["pipeline"] = f"not run: {exc}"
        else:
            studies[test] = study
            entry["pipeline"] = "run"
            entry["baseline_files"] = study.baseline_files
            entry["train_files"] = study.train_files
            entry["valid_files"] = int(study.metrics["valid_files"])
            entry["per_bearing_alarms"] = _records(study.per_bearing)
            entry["detector_heldout_exceed_rate"] = {
                k: study.metrics[f"{k}_heldout_exceed_rate"] for k in MODEL_KINDS
            }
            fig = plot_health_timelines(
                study.long, study.alarms, PLOT_INDICATORS, title=f"IMS {test}: health indicators per bearing"
            )
            save_figures({f"ims_{test}_health_indicators": fig}, out)
        first = list_ims_run(directory).iloc[0]
        data = read_ims_file(first["path"])
        diag = {}
        if data.std(axis=0).min() > 0.01:  # a signal to diagnose (not a stopped rig)
            step = data.shape[1] // 4
            for b in range(4):
                d = diagnose(data[:, b * step], IMS_FS, IMS_RPM, REXNORD_ZA_2115)
                diag[f"bearing {b + 1}"] = {"fault": d.fault, "scores_db": d.scores_db}
                spectra.setdefault(test, {})[f"IMS {test} {first['file']} bearing {b + 1}"] = d
        entry["diagnosis_first_file"] = diag or "no signal (rig stopped)"
        entry["conclusion"] = _conclusion(entry)
        section[test] = entry
    return section, studies, spectra


def _conclusion(entry: dict[str, Any]) -> str:
    cov = entry["coverage"]
    if cov["files_present"] == 1:
        text = (
            f"1 file present ({cov['file_names'][0]}): its place in the run cannot be told from the directory"
        )
    else:
        text = (
            f"{cov['files_present']} files present, at nominal positions {cov['nominal_file_numbers']} of the "
            f"{cov['nominal_files_over_span']} a complete run over their {cov['span_hours']} h span would hold"
        )
    if entry["pipeline"] != "run":
        return (
            text
            + "; the alarm pipeline needs at least 2 files with signal, so only features and diagnosis ran."
        )
    alarms = [r for r in entry["per_bearing_alarms"] if r["alarm_file"] is not None]
    monitored = max(r["monitored_files"] for r in entry["per_bearing_alarms"])
    text += f"; {entry['valid_files']} with signal, {len(entry['baseline_files'])} used as healthy baseline, "
    text += f"{monitored} monitored after it; "
    if not alarms:
        return text + "no confirmed alarm on any bearing or indicator."
    first = min(alarms, key=lambda r: r["alarm_file_index"])
    return text + (
        f"{len(alarms)} indicator alarms; earliest: bearing {first['bearing']} {first['indicator']} at "
        f"{first['alarm_file']}, {first['hours_before_end']:.1f} h before the last file."
    )


def _cwru_section(
    path: Path, fs: float, max_files: int | None
) -> tuple[list[dict[str, Any]], dict[str, Diagnosis]]:
    """Diagnose the drive-end channel of every CWRU ``.mat`` file of ``path`` (or of that one file). Each file's
    sampling rate comes from its CWRU record number (the file name, else the ``X<nnn>`` variables inside: the
    normal baseline 97–100 is recorded at 48 kHz, the drive-end fault records at 12 kHz); ``fs`` is used only for
    a number the CWRU catalogue does not list."""
    files = sorted(path.glob("*.mat")) if path.is_dir() else [path]
    rows: list[dict[str, Any]] = []
    spectra: dict[str, Diagnosis] = {}
    for f in files[: max_files or None]:
        rec = read_cwru_mat(f, fs)  # the rate is only recorded here, not applied: the samples are the same
        label = (cwru_label(f.stem) if f.stem.isdigit() else None) or cwru_label(rec.record)
        file_fs, fs_source = (label.fs, "CWRU record number") if label is not None else (fs, "cwru_fs parameter")
        rpm = rec.rpm or 1797.0
        d = diagnose(rec.signals["DE"], file_fs, rpm, SKF_6205)
        rows.append({"file": f.name, "record": rec.record, "fs": file_fs, "fs_source": fs_source, "rpm": rpm,
                     "fault": d.fault} | d.scores_db)  # fmt: skip
        if len(spectra) < 4:
            spectra[f"CWRU {f.name} DE"] = d
    return rows, spectra


#: the raw IMS recordings under the datasets folder (SM_DATASETS_DIR): ``1st_test/``, ``2nd_test/``, ``3rd_test/``
IMS_RELATIVE_PATH = "ims/raw"


def resolve_data_paths(ims_path: str | None, cwru_path: str | None) -> tuple[Path | None, Path | None]:
    """The IMS root (None: ``ims/raw`` in SM_DATASETS_DIR; ``""``: no IMS section) and the CWRU file or folder
    (None or ``""``: no CWRU section). Raises :class:`core.datasets.DatasetMissingError` when a folder is missing
    or holds no recordings."""
    from core.datasets import DatasetMissingError, missing_message, resolve_input
    from core.ml.vibration.readers import list_ims_tests

    ims_root = None
    if ims_path != "":
        ims_root = resolve_input(ims_path, IMS_RELATIVE_PATH, "ims", kind="folder")
        if not list_ims_tests(ims_root):
            raise DatasetMissingError(
                missing_message(
                    ims_root / "2nd_test", "ims", what="folder of IMS recordings (YYYY.MM.DD.hh.mm.ss)"
                )
            )
    cwru_root = None
    if cwru_path:
        cwru_root = Path(cwru_path)
        if not (cwru_root.is_file() or (cwru_root.is_dir() and any(cwru_root.glob("*.mat")))):
            raise DatasetMissingError(missing_message(cwru_root, "cwru", what="CWRU .mat file or folder"))
    return ims_root, cwru_root


def run_gauntlet(
    *,
    ims_path: str | None = None,
    cwru_path: str | None = None,
    cwru_fs: float = 12_000.0,
    output_dir: str = "docs/ml/vibration",
    summary_path: str | None = "docs/ml/vibration_summary.json",
    tracking_uri: str | None = None,
    window: int = 2048,
    overlap: float = 0.5,
    max_files: int | None = None,
    simulate: bool = True,
    sim_files: int = 120,
    sim_onset: int = 70,
    sim_samples: int = 20_480,
    sim_other_faults: tuple[str, ...] | list[str] = ("inner", "ball"),
    diag_seeds: int = 3,
    k: float = 3.0,
    n: int = 3,
    m: int = 5,
    register: bool = True,
    progress: bool = True,
) -> GauntletResult:
    import mlflow

    from core.ml.vibration.tracking import log_detector_run, start_experiment

    # checked before any work: a missing dataset stops the run at once with the file, the folder and the command
    ims_root, cwru_root = resolve_data_paths(ims_path, cwru_path)
    ims_path = str(ims_root) if ims_root is not None else None
    cwru_path = str(cwru_root) if cwru_root is not None else None
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = AlarmConfig(k=k, n=n, m=m)
    params = {
        "ims_path": ims_path, "cwru_path": cwru_path, "window": window, "overlap": overlap,
        "sim_other_faults": list(sim_other_faults),
        "max_files": max_files, "simulate": simulate, "sim_files": sim_files, "sim_onset": sim_onset,
        "alarm_k": k, "alarm_n": n, "alarm_m": m,
    }  # fmt: skip
    summary: dict[str, Any] = {
        "reference": REFERENCE,
        "params": params,
        "defect_frequencies_hz": {
            "ims_za2115_2000rpm": REXNORD_ZA_2115.frequencies(IMS_RPM),
            "cwru_6205_1797rpm": SKF_6205.frequencies(1797.0),
        },
        "defect_orders": {"za2115": REXNORD_ZA_2115.orders(), "6205": SKF_6205.orders()},
    }
    result = GauntletResult(summary)
    uri = start_experiment(tracking_uri)
    spectra: dict[str, Any] = {}
    with mlflow.start_run(run_name="vibration-gauntlet") as parent:
        result.run_id = parent.info.run_id
        mlflow.set_tags({"sm.family": "vibration", "sm.kind": "gauntlet"})
        mlflow.log_params({key: str(v) for key, v in params.items()})
        models: dict[str, Any] = {}
        if simulate:
            study, run = simulation_study(
                sim_files, sim_onset, n_samples=sim_samples, window=window, overlap=overlap,
                config=cfg, progress=progress,
            )  # fmt: skip
            result.tables["simulation"] = study.per_bearing
            summary["simulation"] = {
                "fault": "outer race, bearing 1", "files": sim_files, "onset_file": sim_onset,
                "file_minutes": 10, "baseline_files": len(study.baseline_files),
                "severity_at_detection_g": {
                    r["indicator"]: None if r["detected_at_file"] is None
                    else float(run.severities[int(r["detected_at_file"])])
                    for r in _records(study.per_bearing)
                },
                "per_indicator": _records(study.per_bearing),
                "detector_heldout_exceed_rate": {k_: study.metrics[f"{k_}_heldout_exceed_rate"] for k_ in MODEL_KINDS},
            }  # fmt: skip
            figs = {
                "sim_health_indicators": plot_health_timelines(
                    study.long, study.alarms, PLOT_INDICATORS, x="file_index", onset_x=sim_onset,
                    faulty_bearing=1, title="simulated run: health indicators per bearing (green: true onset)",
                ),
                "sim_detection": plot_simulator_detection(study, run, ("rms", "kurtosis", "env_bpfo", *MODEL_KINDS)),
            }  # fmt: skip
            save_figures(figs, out)
            for kind, det in study.detectors.items():
                metrics = {
                    key.removeprefix(f"{kind}_"): v
                    for key, v in study.metrics.items()
                    if key.startswith(kind)
                }
                models[f"sim_{kind}"] = log_detector_run(
                    det, study.windows, run_name=f"sim_{kind}", metrics=metrics,
                    params={"data": "simulated run", "window": window, "overlap": overlap}, registered_model_name=None,
                    log_model=False,
                )  # fmt: skip
            summary["simulation_other_faults"] = {}
            for fault in sim_other_faults:  # the same run with another defect type: delays and false alarms
                other, _ = simulation_study(
                    sim_files, sim_onset, fault=fault, n_samples=sim_samples, window=window, overlap=overlap,
                    config=cfg, progress=progress,
                )  # fmt: skip
                result.tables[f"simulation_{fault}"] = other.per_bearing
                summary["simulation_other_faults"][fault] = _records(other.per_bearing)
        diag = diagnosis_check(diag_seeds)
        result.tables["diagnosis_simulated"] = diag["table"]
        summary["diagnosis_simulated"] = {
            "accuracy": diag["accuracy"],
            "accuracy_by_severity": diag["accuracy_by_severity"],
            "cases": _records(diag["table"]),
        }
        spectra_sim = diag["spectra"]
        if ims_path:
            section, studies, spectra = _ims_section(
                Path(ims_path), out, window=window, overlap=overlap, max_files=max_files, cfg=cfg
            )
            summary["ims"] = section
            for test, st in studies.items():
                result.tables[f"ims_{test}_alarms"] = st.per_bearing
            preferred = studies.get("2nd_test") or next(iter(studies.values()), None)
            if preferred is not None:
                # promotion evidence: the held-out healthy recordings as they are and with a simulated defect
                held_paths = preferred.files.set_index("file_index").loc[preferred.heldout_files, "path"]
                heldout = build_evidence(
                    [read_ims_file(path) for path in held_paths], IMS_FS, window=window, overlap=overlap
                )
                for kind, det in preferred.detectors.items():
                    name = f"vibration_ims_{kind}" if register else None
                    models[f"ims_{kind}"] = log_detector_run(
                        det, preferred.windows, run_name=f"ims_{kind}",
                        metrics={"heldout_exceed_rate": preferred.metrics[f"{kind}_heldout_exceed_rate"]},
                        params={"data": preferred.name, "train_files": preferred.train_files, "window": window},
                        registered_model_name=name, heldout=heldout, tracking_uri=uri,
                    )  # fmt: skip
        if cwru_path:
            rows, cwru_spectra = _cwru_section(Path(cwru_path), cwru_fs, max_files)
            summary["cwru"] = rows
            if cwru_spectra:
                spectra["cwru"] = cwru_spectra
        figs = {"envelope_spectra_simulated": plot_envelope_spectra(spectra_sim)}
        for name, group in spectra.items():
            figs[f"envelope_spectra_{'ims_' if name != 'cwru' else ''}{name}"] = plot_envelope_spectra(group)
        save_figures(figs, out)
        summary["models"] = models
        result.figures = {p.stem: p for p in sorted(out.glob("*.png"))}
        mlflow.log_metrics(_parent_metrics(summary))
        mlflow.log_artifacts(str(out), "plots")
        text = json.dumps(summary, indent=2, default=_default)
        mlflow.log_text(text, "vibration_summary.json")
    if summary_path:
        Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
        Path(summary_path).write_text(text + "\n", encoding="utf-8")
    return result


def _parent_metrics(summary: dict[str, Any]) -> dict[str, float]:
    metrics = {"diagnosis_accuracy_simulated": summary["diagnosis_simulated"]["accuracy"]}
    groups = {"": summary.get("simulation", {}).get("per_indicator", [])}
    groups |= {f"{fault}_": rows for fault, rows in summary.get("simulation_other_faults", {}).items()}
    for prefix, rows in groups.items():
        for row in rows:
            if row["delay_files"] is not None:
                metrics[f"sim_{prefix}{row['indicator']}_delay_files"] = float(row["delay_files"])
            metrics[f"sim_{prefix}{row['indicator']}_false_alarms"] = float(
                row["false_alarms_faulty_bearing"] + row["false_alarms_healthy_bearings"]
            )
    return metrics


def _default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (pd.Timestamp, Path)):
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value)}")
