"""``python -m apps.cli diagnose-bearing FILE --fs 12000 --rpm 1797 --bearing 6205``: names the most likely
bearing fault (inner race, outer race, ball, none) of one vibration recording from its envelope spectrum, without
training (``core.ml.vibration.diagnosis``). FILE: a CWRU ``.mat`` (channel DE/FE/BA) or a numeric text file such
as an IMS recording (channel = column index)."""

from __future__ import annotations

import json
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
        float | None, typer.Option(help="envelope band lower edge [Hz] (default 0.1·fs)")
    ] = None,
    band_high: Annotated[
        float | None, typer.Option(help="envelope band upper edge [Hz] (default 0.4·fs)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Diagnose a bearing fault from the envelope spectrum (energy at BPFO / BPFI / 2·BSF and harmonics)."""
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
    for name, score in result.scores_db.items():
        ratios = ", ".join(f"{r:.1f}" for r in result.harmonic_ratios[name])
        typer.echo(
            f"  {name:<11} rate {result.impact_rates[name]:7.1f} Hz  score {score:5.1f} dB  (peak/floor: {ratios})"
        )
    typer.echo(
        f"threshold: {result.threshold_db:.1f} dB (surrogate 95th percentile {result.surrogate_p95_db:.1f} dB)"
    )
    typer.echo(f"diagnosis: {result.fault}")
