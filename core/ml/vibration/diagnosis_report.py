"""The diagnosis report (docs/ml/diagnosis.md): every CWRU file of a folder and the simulator grid, diagnosed.

:func:`evaluate_cwru` diagnoses the drive-end channel of every labelled CWRU ``.mat`` file (sampling rate from the
file number, speed from the file's ``X<nnn>RPM``); :func:`evaluate_simulator` diagnoses the cases of
:mod:`core.ml.vibration.diagnosis_grid`. :func:`outcome` sorts each answer into correct / unknown / missed ("none"
for a defect) / false alarm (a family named for a healthy record) / wrong family; :func:`confusion` tabulates truth ×
answer. :func:`build_report` runs everything with a progress bar, writes the figures (``kurtogram_ses_*.png``,
``confusion_*.png``, ``detection_heldout.png``), the per-record tables (CSV) and ``results.json``, and fills the
results section of the Markdown report between its markers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.ml.vibration.diagnosis import FAULTS, Diagnosis, diagnose
from core.ml.vibration.diagnosis_grid import (
    HELDOUT_FIRST_SEED,
    SimCase,
    cwru_label,
    development_cases,
    heldout_cases,
)
from core.ml.vibration.readers import read_cwru_mat

ANSWERS = FAULTS  # the diagnosis's possible answers
TRUTHS = tuple(a for a in ANSWERS if a != "unknown")
MARK_START = "<!-- results:start (written by python -m apps.cli diagnose-report) -->"
MARK_END = "<!-- results:end -->"
CWRU_RELATIVE_PATH = "cwru/12k_DE_0hp"


def outcome(truth: str, answer: str) -> str:
    """correct | unknown | missed (none for a defect) | false alarm (family for healthy) | wrong family."""
    if answer == truth:
        return "correct"
    if answer == "unknown":
        return "unknown"
    if truth != "none" and answer == "none":
        return "missed"
    if truth == "none":
        return "false alarm"
    return "wrong family"


def _row(d: Diagnosis, truth: str, seconds: float) -> dict[str, Any]:
    inner_sidebands = d.sideband_scores_db.get("inner race")
    return {
        "truth": truth,
        "answer": d.fault,
        "outcome": outcome(truth, d.fault),
        "band_low_hz": round(d.band[0]),
        "band_high_hz": round(d.band[1]),
        "band_source": d.band_source,
        "spectrum": "whitened" if d.prewhitened else "raw",
        "band_kurtosis": round(d.band_kurtosis, 2),
        "floor_db": round(d.threshold_db, 1),
        **{f"score_{k.replace(' ', '_')}_db": round(v, 1) for k, v in d.scores_db.items()},
        "inner_sidebands_db": None if inner_sidebands is None else round(inner_sidebands, 1),
        "reason": d.reason,
        "seconds": round(seconds, 3),
    }


def evaluate_cwru(folder: Path) -> tuple[pd.DataFrame, dict[str, Diagnosis], list[str]]:
    """Diagnose every labelled ``*.mat`` file of ``folder``: (table, diagnoses by file name, skipped files)."""
    rows: list[dict[str, Any]] = []
    diagnoses: dict[str, Diagnosis] = {}
    skipped: list[str] = []
    for path in sorted(folder.glob("*.mat"), key=lambda p: (len(p.stem), p.stem)):
        label = cwru_label(path.stem) if path.stem.isdigit() else None
        if label is None:
            skipped.append(f"{path.name}: not a known CWRU drive-end record number (sampling rate and label unknown)")
            continue
        rec = read_cwru_mat(path, label.fs)
        if rec.rpm is None:
            skipped.append(f"{path.name}: no X<nnn>RPM variable")
            continue
        start = time.perf_counter()
        d = diagnose(rec.signals["DE"], label.fs, rec.rpm, "6205")
        seconds = time.perf_counter() - start
        diagnoses[path.name] = d
        meta = {"file": path.name, "record": rec.record, "fs": label.fs, "rpm": rec.rpm, "size_in": label.size_in,
                "load_hp": label.load_hp, "position": label.position, "samples": len(rec.signals["DE"])}  # fmt: skip
        rows.append(meta | _row(d, label.family, seconds))
    return pd.DataFrame(rows), diagnoses, skipped


Progress = Callable[[Iterable[SimCase]], Iterable[SimCase]]


def evaluate_simulator(cases: Iterable[SimCase], progress: Progress | None = None) -> pd.DataFrame:
    """Diagnose each case (the speed given is ``rpm_given``); one row per case."""
    rows = []
    for case in progress(cases) if progress else cases:
        x = case.signal()
        start = time.perf_counter()
        d = diagnose(x, case.fs, case.rpm_given, case.geometry)
        rows.append(case.describe() | _row(d, case.truth, time.perf_counter() - start))
    return pd.DataFrame(rows)


def confusion(table: pd.DataFrame) -> pd.DataFrame:
    """Truth (rows, the families present) × answer (columns: the three families, none, unknown) counts."""
    truths = [t for t in TRUTHS if t in set(table["truth"])]
    out = pd.crosstab(table["truth"], table["answer"]).reindex(index=truths, columns=list(ANSWERS), fill_value=0)
    return out.astype(int)


def summarise(table: pd.DataFrame) -> dict[str, Any]:
    """Counts per family and overall: records, correct, unknown, missed, wrong (false alarm + wrong family)."""
    out: dict[str, Any] = {}
    for truth, group in [*table.groupby("truth"), ("all", table)]:
        counts = group["outcome"].value_counts()
        n = len(group)
        out[str(truth)] = {
            "records": n,
            "correct": int(counts.get("correct", 0)),
            "unknown": int(counts.get("unknown", 0)),
            "missed": int(counts.get("missed", 0)),
            "false_alarm": int(counts.get("false alarm", 0)),
            "wrong_family": int(counts.get("wrong family", 0)),
            "unknown_rate": round(float(counts.get("unknown", 0)) / n, 3) if n else None,
        }
        defects = int((group["truth"] != "none").sum())
        out[str(truth)]["none_on_defect_rate"] = (
            round(float(counts.get("missed", 0)) / defects, 3) if defects else None
        )
    return out


@dataclass
class DiagnosisReport:
    cwru: pd.DataFrame
    development: pd.DataFrame
    heldout: pd.DataFrame
    summary: dict[str, Any]
    figures: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _markdown_table(frame: pd.DataFrame, index: bool = True) -> str:
    frame = frame.reset_index() if index else frame
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    sep = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, sep, *body])


def results_markdown(report: DiagnosisReport) -> str:
    """The generated results section (tables of the measured figures)."""
    s = report.summary
    parts = [
        f"Measured by `python -m apps.cli diagnose-report` on {s['generated_utc']} (figures in `docs/ml/diagnosis/`)."
    ]
    if not report.cwru.empty:
        cols = ["file", "fs", "rpm", "truth", "size_in", "answer", "outcome", "band_low_hz", "band_high_hz",
                "spectrum", "band_kurtosis", "floor_db", "score_outer_race_db", "score_inner_race_db", "score_ball_db",
                "inner_sidebands_db"]  # fmt: skip
        c = s["cwru"]["all"]
        parts += [
            "### CWRU files (development data: there is no other CWRU data here, so this is not a generalisation "
            "figure)",
            f"{c['records']} files: {c['correct']} correct, {c['unknown']} unknown, {c['missed']} missed (\"none\"), "
            f"**{c['false_alarm'] + c['wrong_family']} wrong names** (false alarm or wrong family). "
            f"Slowest file {report.cwru['seconds'].max():.2f} s.",
            _markdown_table(report.cwru[cols], index=False),
            "Reasons given by the diagnosis:\n\n"
            + "\n".join(f"* `{r.file}` → **{r.answer}**: {r.reason}" for r in report.cwru.itertuples()),
            "Confusion (rows: truth, columns: answer):",
            _markdown_table(confusion(report.cwru)),
        ]
    for name, table in (("development", report.development), ("held-out", report.heldout)):
        if table.empty:
            continue
        t = s[name]["all"]
        parts += [
            f"### Simulator, {name} ({t['records']} records)",
            f"{t['correct']} correct, {t['unknown']} unknown (rate {t['unknown_rate']:.3f}), {t['missed']} missed, "
            f"{t['false_alarm']} false alarms, {t['wrong_family']} wrong family; \"none\" on "
            f"{t['missed']} of {t['records'] - s[name].get('none', {}).get('records', 0)} defects (rate "
            f"{t['none_on_defect_rate']:.3f}). "
            f"Median {table['seconds'].median():.3f} s, slowest {table['seconds'].max():.2f} s per record.",
            _markdown_table(confusion(table)),
        ]
        per = pd.DataFrame(s[name]).T.rename_axis("truth")
        counts = ["records", "correct", "unknown", "missed", "false_alarm", "wrong_family"]
        per[counts] = per[counts].astype(int)
        parts.append(_markdown_table(per))
        faulty = table[table["truth"] != "none"].assign(
            impact_to_noise=lambda t: pd.cut(t["severity_g"] / t["noise_sd_g"], [0, 1, 2, 4, np.inf],
                                             labels=["≤ 1", "1–2", "2–4", "> 4"])  # fmt: skip
        )
        by_snr = faulty.groupby(["impact_to_noise", "truth"], observed=True)["outcome"].apply(
            lambda o: f"{(o == 'correct').mean():.2f} ({len(o)})"
        )
        parts += [
            "Share of defects named correctly (records) by peak impact amplitude / noise SD (for outer races at "
            "3:00 and 12:00 the load zone scales the impacts down further):",
            _markdown_table(by_snr.unstack("truth")),
        ]
        outer = table[table["truth"] == "outer race"]
        if not outer.empty:
            zone = pd.cut(outer["outer_angle_deg"], [-1, 30, 75, 105, 150, 181],
                          labels=["0–30 (6:00)", "30–75", "75–105 (3:00)", "105–150", "150–180 (12:00)"])  # fmt: skip
            by_angle = outer.groupby(zone, observed=True)["outcome"].apply(
                lambda o: f"{(o == 'correct').mean():.2f} ({len(o)})"
            )
            parts += ["Outer race: share correct by spall angle from the load direction (deg):",
                      _markdown_table(by_angle.rename("share correct (records)").to_frame())]  # fmt: skip
        if name == "held-out":
            for col, label in (("fs", "sampling rate"), ("bearing", "bearing"), ("masking", "masking")):
                grouped = table.groupby([col, "truth"])["outcome"].apply(
                    lambda o: f"{(o == 'correct').mean():.2f} ({len(o)})"
                )
                parts += [f"Share correct by {label}:", _markdown_table(grouped.unstack("truth"))]
    if report.skipped:
        parts.append("Skipped files: " + "; ".join(report.skipped))
    return "\n\n".join(parts)


def _marked_text(doc: Path) -> str:
    """The text of ``doc``; ValueError when it lacks the results markers."""
    text = doc.read_text(encoding="utf-8")
    if MARK_START not in text or MARK_END not in text:
        raise ValueError(f"{doc} has no results markers ({MARK_START} … {MARK_END})")
    return text


def fill_markdown(doc: Path, section: str) -> None:
    """Replace the text between :data:`MARK_START` and :data:`MARK_END` of ``doc`` by ``section``."""
    text = _marked_text(doc)
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    doc.write_text(f"{head}{MARK_START}\n\n{section}\n\n{MARK_END}{tail}", encoding="utf-8")


def build_report(cwru_folder: Path | None, out_dir: Path, *, doc: Path | None = None, heldout: int = 400,
                 development: bool = True, progress: bool = True,
                 heldout_seed: int = HELDOUT_FIRST_SEED) -> DiagnosisReport:  # fmt: skip
    """Run the whole evaluation, write figures / tables / ``results.json`` into ``out_dir`` and, with ``doc``,
    the results section of that Markdown file."""
    from tqdm.auto import tqdm

    from core.ml.vibration.diagnosis_plots import plot_confusions, plot_detection, plot_kurtogram_ses

    if doc is not None:  # fail before the long run, not after it
        _marked_text(doc)
    out_dir.mkdir(parents=True, exist_ok=True)
    cwru, diagnoses, skipped = (
        evaluate_cwru(cwru_folder) if cwru_folder is not None else (pd.DataFrame(), {}, [])
    )

    def bar(desc: str) -> Progress:
        return lambda cases: tqdm(list(cases), desc=desc, disable=not progress)

    dev = evaluate_simulator(development_cases(), bar("simulator development")) if development else pd.DataFrame()
    held = (
        evaluate_simulator(heldout_cases(heldout, first_seed=heldout_seed), bar("simulator held-out"))
        if heldout
        else pd.DataFrame()
    )
    summary: dict[str, Any] = {"generated_utc": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")}
    for name, table in (("cwru", cwru), ("development", dev), ("held-out", held)):
        if not table.empty:
            summary[name] = summarise(table)
            # run times stay out of the committed tables (they change on every run); the report gives them
            table.drop(columns=["seconds"]).to_csv(out_dir / f"{name}.csv", index=False)
    report = DiagnosisReport(cwru, dev, held, summary, skipped=skipped)
    figures: dict[str, Any] = {}
    shown = {}
    for truth in TRUTHS:  # one CWRU file per family: the first one of that family diagnosed correctly, else first
        if cwru.empty:
            break
        fam = cwru[cwru["truth"] == truth]
        if not fam.empty:
            pick = fam[fam["outcome"] == "correct"]
            shown[truth] = str((pick if not pick.empty else fam)["file"].iloc[0])
    for truth, name in shown.items():
        figures[f"kurtogram_ses_{truth.replace(' ', '_')}_{Path(name).stem}"] = plot_kurtogram_ses(
            diagnoses[name], f"CWRU {name} ({truth})"
        )
    tables = {k: v for k, v in (("CWRU", cwru), ("simulator development", dev), ("simulator held-out", held))
              if not v.empty}  # fmt: skip
    if tables:
        figures["confusion"] = plot_confusions({k: confusion(v) for k, v in tables.items()})
    if not held.empty:
        figures["detection_heldout"] = plot_detection(held)
    from core.ml.eda.plots import save_figures

    for path in save_figures(figures, out_dir):
        report.figures[path.stem] = path
    (out_dir / "results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if doc is not None:
        fill_markdown(doc, results_markdown(report))
    return report


