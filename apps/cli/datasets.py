"""``python -m apps.cli datasets [--only ai4i2020,ims,…] [--dest DIR]`` (``make datasets``): download the
gauntlets' public datasets from their official sources into SM_DATASETS_DIR, verify their checksums, and print
the licence and citation of each (``core.datasets``). ``--list`` prints the catalogue without downloading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from apps.cli.app import app

if TYPE_CHECKING:  # imported by the command: `python -m apps.cli --help` stays quick
    from rich.progress import Progress

    from core.datasets.catalogue import Dataset


def _rich_progress() -> Progress:  # a rich Progress, used as a context manager
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), transient=True,
    )  # fmt: skip


def _print_catalogue(datasets: list[Dataset]) -> None:
    for d in datasets:
        typer.echo(f"{d.name}: {d.title}")
        for s in d.sources:
            typer.echo(f"  {s.url}" + (f"  ({s.approx_size})" if s.approx_size else ""))
        typer.echo(f"  licence: {d.licence}")
        typer.echo(f"  verified: {d.verification}")


@app.command("datasets")
def datasets(
    only: Annotated[
        str | None,
        typer.Option(help="comma-separated names (ai4i2020, ims, cwru, cmapss, mimii); default: all"),
    ] = None,
    dest: Annotated[
        Path | None, typer.Option(help="destination folder (default: SM_DATASETS_DIR, i.e. .data/datasets)")
    ] = None,
    mirror: Annotated[
        str | None,
        typer.Option(help="fetch every source as <MIRROR>/<file name> instead of its official URL"),
    ] = None,
    keep_archives: Annotated[
        bool, typer.Option(help="keep downloaded archives in <dest>/.downloads after extraction")
    ] = False,
    list_only: Annotated[bool, typer.Option("--list", help="print the catalogue and exit")] = False,
) -> None:
    """Download the gauntlets' datasets (AI4I 2020, NASA IMS, CWRU, C-MAPSS, MIMII/DCASE), verified by SHA-256."""
    from core.datasets import datasets_root, select
    from core.datasets.download import DatasetDownloadError, fetch_dataset, http_client

    try:
        chosen = select(only)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if list_only:
        _print_catalogue(chosen)
        return
    root = dest if dest is not None else datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    typer.echo(f"datasets folder: {root}")
    failed: list[str] = []
    with http_client() as client, _rich_progress() as bar:

        def progress(description: str, total: int | None) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        for dataset in chosen:
            typer.echo(f"\n{dataset.name}: {dataset.title}")
            try:
                result = fetch_dataset(
                    dataset,
                    root,
                    client=client,
                    mirror=mirror,
                    progress=progress,
                    keep_archives=keep_archives,
                )
            except DatasetDownloadError as exc:
                typer.echo(f"  FAILED: {exc}", err=True)
                failed.append(dataset.name)
                continue
            counts = {
                s: sum(1 for f in result.files if f.status == s)
                for s in ("downloaded", "present", "unverified")
            }
            typer.echo(
                f"  ok: {counts['downloaded']} downloaded and verified, {counts['present']} already present "
                f"and verified, {counts['unverified']} without a known checksum"
                + (" (listed in SHA256SUMS.unverified)" if counts["unverified"] else "")
            )
            typer.echo(f"  licence: {dataset.licence}")
            typer.echo(f"  cite: {dataset.citation}")
    if failed:
        typer.echo(f"\nfailed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"\ndone: {', '.join(d.name for d in chosen)} in {root}")
