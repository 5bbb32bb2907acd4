"""``python -m apps.cli models list|compare NAME|promote NAME VERSION [--force]``: the MLflow model registry
(``MLFLOW_TRACKING_URI``, through the registry port's MLflow adapter) with :mod:`core.ml.registry.promotion`.

``promote`` evaluates the version and the current champion with the family's evaluator (model-name prefix) and
moves the ``champion`` alias only if the version wins by ``SM_PROMOTION_MARGIN``; ``--force`` moves it without
evaluation (recorded on the version as ``sm.promotion.decided_by=force_promote``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from apps.cli.app import app
from apps.cli.common import cli_settings, require_mlflow, unreachable_message

if TYPE_CHECKING:
    from core.ml.registry.port import ModelRegistry

models_app = typer.Typer(
    help="List, compare and promote registered models (MLflow aliases).", no_args_is_help=True
)
app.add_typer(models_app, name="models")

T = TypeVar("T")


def _console() -> Console:
    return Console(width=160)


def _call(work: Callable[[ModelRegistry], T]) -> T:
    """Run ``work(registry)`` on the MLflow registry; registry, promotion and MLflow errors (a model rejecting its
    evaluation data) become one line on stderr and exit code 1.

    MLflow is probed first: when it does not answer the command ends within seconds, naming the address."""
    uri = cli_settings().mlflow_tracking_uri
    require_mlflow(uri)  # before importing mlflow (seconds): an unreachable server is reported at once

    from mlflow.exceptions import MlflowException

    from core.ml.registry.mlflow_registry import MlflowRegistry
    from core.ml.registry.port import ModelRegistryError, RegistryUnavailable
    from core.ml.registry.promotion import RegistryError

    try:
        return work(MlflowRegistry(uri))
    except (OSError, RegistryUnavailable) as exc:  # MLflow went away during the command
        reason = exc.detail if isinstance(exc, RegistryUnavailable) else type(exc).__name__
        typer.echo(f"error: {unreachable_message('MLflow', uri, reason)}", err=True)
        raise typer.Exit(1) from None
    except (ModelRegistryError, RegistryError, MlflowException) as exc:
        message = getattr(exc, "message", None) or str(exc)
        typer.echo(f"error: {message.splitlines()[0] if message else type(exc).__name__}", err=True)
        raise typer.Exit(1) from None


def _registry() -> ModuleType:
    """:mod:`core.ml.registry.promotion`, imported when a command runs (not for ``--help``)."""
    from core.ml.registry import promotion as registry

    return registry


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


@models_app.command("list")
def list_command(
    metrics: Annotated[int, typer.Option(help="metrics shown per version (alphabetical)")] = 4,
) -> None:
    """Registered models, their versions, aliases and their runs' metrics."""
    models = _call(lambda registry: _registry().list_models(registry=registry))
    console = _console()
    if not models:
        console.print("no registered models")
        return
    table = Table(title="Registered models")
    for column in ("model", "version", "aliases", "created (UTC)", "run", "metrics"):
        table.add_column(column)
    for model in models:
        for v in model.versions:
            shown = ", ".join(f"{k}={_fmt(val)}" for k, val in sorted(v.metrics.items())[:metrics])
            table.add_row(
                model.name,
                v.version,
                ", ".join(v.aliases),
                v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "",
                (v.run_id or "")[:8],
                shown,
            )
    console.print(table)


@models_app.command("compare")
def compare_command(name: Annotated[str, typer.Argument(help="registered model name")]) -> None:
    """Champion vs challenger: every metric of both versions' runs."""
    result = _call(lambda registry: _registry().compare(name, registry=registry))
    champion = f"champion v{result.champion.version}" if result.champion else "champion (none)"
    challenger = f"challenger v{result.challenger.version}" if result.challenger else "challenger (none)"
    table = Table(title=f"{name}: champion vs challenger")
    table.add_column("metric")
    table.add_column(champion, justify="right")
    table.add_column(challenger, justify="right")
    for key, (a, b) in result.metrics.items():
        table.add_row(key, _fmt(a), _fmt(b))
    _console().print(table)
    if not result.metrics:
        typer.echo("no metrics to compare")


@models_app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="version to promote")],
    force: Annotated[bool, typer.Option("--force", help="make it champion without evaluation")] = False,
    margin: Annotated[float | None, typer.Option(help="default: SM_PROMOTION_MARGIN")] = None,
) -> None:
    """Evaluate VERSION against the champion and promote it if it wins (or unconditionally with --force)."""
    if force:
        decision = _call(lambda registry: _registry().force_promote(name, version, registry=registry))
    else:
        decision = _call(
            lambda registry: _registry().promote_if_better(name, version, registry=registry, margin=margin)
        )
    table = Table(
        title=f"{name} v{decision.candidate_version}: {'promoted to champion' if decision.promoted else 'not promoted'}"
    )
    table.add_column("field")
    table.add_column("value")
    for key, value in decision.to_dict().items():
        table.add_row(key, str(value))
    _console().print(table)
