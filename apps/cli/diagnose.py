"""``python -m apps.cli diagnose-bearing FILE --fs 12000 --rpm 1797 --bearing 6205``: names the bearing fault
family (inner race, outer race, ball), "none" (no bearing-fault evidence) or "unknown" (evidence, but no family
clearly wins) of one vibration recording, without training: cepstral pre-whitening, fast-kurtogram band, squared
envelope spectrum, harmonic and sideband evidence (``core.ml.vibration.diagnosis``). FILE: a CWRU ``.mat``
(channel DE/FE/BA) or a numeric text file such as an IMS recording (channel = column index).

``python -m apps.cli diagnose-report``: diagnoses every CWRU file of a folder and the simulator grid and writes
docs/ml/diagnosis.md's results, its figures and tables (``core.ml.vibration.diagnosis_report``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.app import app


@app.command("diagnose-bearing")
def diagnose_bearing(
    file: Annotated[Path, typer.Argument(help="CWRU .mat file or whitespace-separated numeric text file")],
    fs: Annotated[float, typer.Option(help="sampling rate [Hz] (CWRU: 12000 or 48000; IMS: 20000)")],
    rpm: Annotated[
        float | None, typer.Option(help="shaft speed [rpm] (default: the file's X<nnn>RPM for CWRU)")
    ] = None,
    bearing: Annotated[str, typer.Option(help="bearing geometry: 6205 (CWRU) or ZA-2115 (IMS)")] = "6205",
    channel: Annotated[str, typer.Option(help="DE/FE/BA for .mat, column index for text files")] = "DE",
    band_low: Annotated[
        float | None, typer.Option(help="envelope band lower edge [Hz] (default: chosen by the kurtogram)")
    ] = None,
    band_high: Annotated[
        float | None, typer.Option(help="envelope band upper edge [Hz] (default: chosen by the kurtogram)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Diagnose a bearing fault from the squared envelope spectrum (BPFO / BPFI / 2·BSF combs and sidebands)."""
    from core.ml.vibration.diagnosis import diagnose
    from core.ml.vibration.readers import read_signal_file

    if not file.is_file():
        typer.echo(f"error: {file} is not a file", err=True)
        raise typer.Exit(2)
    if (band_low is None) != (band_high is None):
        typer.echo("error: give both --band-low and --band-high, or neither", err=True)
        raise typer.Exit(2)
    is_mat = file.suffix.lower() == ".mat"
    if not is_mat and channel.upper() == "DE":  # the default: first column of a text file
        channel = "0"
    if not is_mat and not channel.isdigit():
        typer.echo(f"error: --channel of a text file is a column index, not {channel!r}", err=True)
        raise typer.Exit(2)
    try:
        signal, file_rpm = read_signal_file(file, fs=fs, channel=channel if is_mat else int(channel))
        speed = rpm if rpm is not None else file_rpm
        if speed is None:
            typer.echo("error: --rpm is required (the file has no RPM variable)", err=True)
            raise typer.Exit(2)
        band = (band_low, band_high) if band_low is not None and band_high is not None else None
        result = diagnose(signal, fs, speed, bearing, band=band)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict() | {"file": str(file)}, indent=2))
        return
    typer.echo(f"file: {file}   fs: {fs:g} Hz   rpm: {speed:g}   bearing: {result.bearing}")
    f = result.defect_frequencies
    typer.echo(
        f"defect frequencies: BPFO {f['bpfo']:.1f} Hz, BPFI {f['bpfi']:.1f} Hz, BSF {f['bsf']:.1f} Hz, "
        f"FTF {f['ftf']:.1f} Hz"
    )
    typer.echo(
        f"band: {result.band[0]:.0f}–{result.band[1]:.0f} Hz ({result.band_source} of the "
        f"{'cepstrally pre-whitened' if result.prewhitened else 'raw'} signal; best of {result.bands_searched} "
        f"candidate spectra; spectral kurtosis of the whitened kurtogram's band {result.band_kurtosis:.1f})"
    )
    for name, score in result.scores_db.items():
        ratios = ", ".join(f"{20 * math.log10(r):.1f}" if r > 0 and math.isfinite(r) else "n/a"
                           for r in result.harmonic_ratios[name])  # fmt: skip
        side = result.sideband_scores_db.get(name)
        side_text = "" if side is None else f"  sidebands {side:5.1f} dB"
        typer.echo(
            f"  {name:<11} rate {result.impact_rates[name]:7.1f} Hz (fitted {result.fitted_rates[name]:7.1f})  "
            f"score {score:5.1f} dB  (line/floor dB: {ratios}){side_text}"
        )
    typer.echo(
        f"floor: {result.threshold_db:.1f} dB (surrogate 95th percentile {result.surrogate_p95_db:.1f} dB)"
    )
    typer.echo(f"reason: {result.reason}")
    typer.echo(f"diagnosis: {result.fault}")


@app.command("diagnose-report")
def diagnose_report(
    cwru_dir: Annotated[
        Path | None,
        typer.Option(help="folder of CWRU .mat files (default: cwru/12k_DE_0hp under SM_DATASETS_DIR)"),
    ] = None,
    out: Annotated[Path, typer.Option(help="folder for figures, tables, results.json")] = Path("docs/ml/diagnosis"),
    doc: Annotated[
        Path | None, typer.Option(help="Markdown report whose results section is rewritten")
    ] = Path("docs/ml/diagnosis.md"),
    heldout: Annotated[int, typer.Option(help="number of held-out simulator records (0: none)")] = 400,
    heldout_seed: Annotated[
        int, typer.Option(help="first seed of the held-out grid (30000: the current one; 10000, 20000: earlier, seen)")
    ] = 30_000,
    development: Annotated[bool, typer.Option(help="also run the development grid (384 records)")] = True,
    no_cwru: Annotated[bool, typer.Option("--no-cwru", help="skip the CWRU files")] = False,
) -> None:
    """Diagnose every CWRU file and the simulator grid; write the report's figures, tables and results."""
    from core.datasets import DatasetMissingError, resolve_input
    from core.ml.vibration.diagnosis_report import CWRU_RELATIVE_PATH, build_report

    folder = None
    if not no_cwru:
        try:
            folder = resolve_input(cwru_dir, CWRU_RELATIVE_PATH, "cwru", kind="folder")
        except DatasetMissingError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    if doc is not None and str(doc) in ("", "."):
        doc = None
    if doc is not None and not doc.is_file():
        typer.echo(f"error: {doc} is not a file (pass --doc '' to skip the Markdown report)", err=True)
        raise typer.Exit(2)
    try:
        report = build_report(folder, out, doc=doc, heldout=heldout, development=development,
                              heldout_seed=heldout_seed)  # fmt: skip
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for name in ("cwru", "development", "held-out"):
        if name in report.summary:
            a = report.summary[name]["all"]
            typer.echo(
                f"{name}: {a['records']} records, {a['correct']} correct, {a['unknown']} unknown, "
                f"{a['missed']} missed (none on a defect), {a['false_alarm']} false alarms, "
                f"{a['wrong_family']} wrong family"
            )
    typer.echo(f"figures: {', '.join(sorted(p.name for p in report.figures.values()))} in {out}")
