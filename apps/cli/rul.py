"""``python -m apps.cli rul-evaluate --test FILE --truth FILE [--model NAME] [--version V] [--out CSV]``: scores a
registered ``rul_*`` model (its ``champion`` by default) on a C-MAPSS-format test file and its RUL truth file, and
prints RMSE, the PHM08 score and the empirical coverage of its interval (``core.ml.rul.scoring``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.app import app
from apps.cli.common import cli_settings, require_mlflow, unreachable_message


@app.command("rul-evaluate")
def rul_evaluate(
    test: Annotated[Path, typer.Option(help="C-MAPSS-format test file (unit, cycle, 3 settings, 21 sensors)")],
    truth: Annotated[Path, typer.Option(help="RUL truth file: one integer per test unit, units in ascending order")],
    model: Annotated[str, typer.Option(help="registered model name (rul_<name>)")] = "rul_turbofan",
    version: Annotated[str, typer.Option(help="version number or alias")] = "champion",
    out: Annotated[Path | None, typer.Option(help="write one row per engine to this CSV")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the scores as JSON")] = False,
) -> None:
    """Score a registered RUL model on a C-MAPSS test file and its truth file."""
    for path in (test, truth):
        if not path.is_file():
            typer.echo(f"error: {path} is not a file", err=True)
            raise typer.Exit(2)
    if not model.startswith("rul_"):
        typer.echo(f"error: {model!r} is not a RUL model (rul_<name>)", err=True)
        raise typer.Exit(2)
    uri = tracking_uri or cli_settings().mlflow_tracking_uri
    if uri.startswith(("http://", "https://")):
        require_mlflow(uri)

    from mlflow.exceptions import MlflowException

    from core.ml.registry.mlflow_registry import MlflowRegistry
    from core.ml.registry.port import ModelRegistryError, RegistryUnavailable
    from core.ml.rul.data import CmapssFormatError
    from core.ml.rul.scoring import score_files

    try:
        registry = MlflowRegistry(uri)
        resolved = version if version.isdigit() else registry.alias_version(model, version)
        loaded = registry.load(model, resolved)
        scores, table = score_files(loaded, test, truth)
    except (OSError, RegistryUnavailable) as exc:
        reason = exc.detail if isinstance(exc, RegistryUnavailable) else type(exc).__name__
        typer.echo(f"error: {unreachable_message('MLflow', uri, reason)}", err=True)
        raise typer.Exit(1) from None
    except (ModelRegistryError, MlflowException) as exc:
        message = getattr(exc, "message", None) or str(exc)
        typer.echo(f"error: {message.splitlines()[0] if message else type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    except (CmapssFormatError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False, float_format="%.4f")
    if as_json:
        typer.echo(json.dumps({"model": model, "version": resolved, "test": str(test)} | scores, indent=2))
        return
    typer.echo(f"model: {model} v{resolved}   test: {test} ({int(scores['engines'])} engines)")
    typer.echo(f"RMSE:           {scores['rmse']:.2f} cycles (MAE {scores['mae']:.2f}, bias {scores['bias']:+.2f})")
    typer.echo(f"PHM08 score:    {scores['phm08_score']:.1f} ({scores['phm08_score_mean']:.2f} per engine)")
    nominal = "" if math.isnan(scores["interval"]) else f"{scores['interval']:.0%} "
    width = f"mean width {scores['mean_width']:.1f} cycles"
    typer.echo(f"{nominal}interval:  coverage {scores['coverage']:.1%} of engines, {width}")
    if out is not None:
        typer.echo(f"per-engine table: {out}")
