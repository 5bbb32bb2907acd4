"""``python -m apps.cli dead-letters list|replay``: inspect and replay dead letters of the event bus.

``replay ID`` runs in this process: it builds the runtime the API runs (``core.runtime.bootstrap``: the same bus
and handlers, without the outbox relay and the workers), queues the stored event for the handler that failed,
waits for it to finish and reports whether the handler succeeded or failed again (then a new dead letter is
written). ``replayed_at`` is set either way; a dead letter is replayed
once (exit code 1 with a message when it was already replayed or does not exist).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from apps.cli.app import app
from apps.cli.common import bound_mlflow_client, cli_settings, in_transaction, require_database
from core.config import Settings
from core.errors import AppError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.events.schemas import DeadLetterFilter

dead_letters_app = typer.Typer(help="List and replay dead letters of the event bus.", no_args_is_help=True)
app.add_typer(dead_letters_app, name="dead-letters")


def _settings() -> Settings:
    return cli_settings()


async def _list(
    settings: Settings, where: DeadLetterFilter, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    from core.events.dead_letters import DeadLetterService
    from core.events.schemas import DeadLetterRead

    async def page(session: AsyncSession) -> tuple[list[dict[str, Any]], int]:
        rows, total = await DeadLetterService(session).page(where, limit=limit, offset=offset)
        return [DeadLetterRead.model_validate(r).model_dump(mode="json") for r in rows], total

    return await in_transaction(settings, page)


async def _replay(settings: Settings, dead_letter_id: int) -> dict[str, Any]:
    from core.db.session import create_engine, unit_of_work

    engine = create_engine(settings, pool_size=2, max_overflow=0)
    try:  # before importing the agents (seconds): an unreachable database is reported at once
        await require_database(engine, settings)
    except BaseException:
        await engine.dispose()
        raise
    bound_mlflow_client()  # a handler that asks MLflow (anomaly scoring) gives up within seconds if it is down

    from core.auth.audit import audit
    from core.events.dead_letters import DeadLetterService
    from core.runtime.bootstrap import bootstrap

    runtime = bootstrap(settings, engine=engine, relay=False, workers=False)  # disposes the engine at stop()
    await runtime.start()
    try:
        async with unit_of_work(runtime.session_factory) as session:
            replay = await DeadLetterService(session).replay(dead_letter_id, runtime.bus)
        audit(
            "dead_letter.replay", actor_key_id=None, actor_name="cli", target=f"dead_letter:{dead_letter_id}"
        )
        outcome = await replay.delivery
        return {
            "id": dead_letter_id,
            "event_type": replay.dead_letter.event_type,
            "handlers": outcome,
            "ok": all(result == "ok" for result in outcome.values()),
        }
    finally:
        await runtime.stop()


@dead_letters_app.command("list")
def list_(
    handler: Annotated[str | None, typer.Option(help="only this handler")] = None,
    event_type: Annotated[
        str | None, typer.Option(help="only this event type, e.g. ReadingsIngested")
    ] = None,
    pending: Annotated[bool, typer.Option("--pending", help="only those not replayed yet")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """List dead letters, newest first."""
    from core.events.schemas import DeadLetterFilter

    items, total = asyncio.run(
        _list(
            _settings(),
            DeadLetterFilter(handler=handler, event_type=event_type, replayed=False if pending else None),
            limit=limit,
            offset=offset,
        )
    )
    if as_json:
        typer.echo(json.dumps({"items": items, "total": total, "limit": limit, "offset": offset}))
        return
    if not items:
        typer.echo("no dead letters")
        return
    for item in items:
        state = f"replayed {item['replayed_at']}" if item["replayed_at"] else "pending"
        typer.echo(
            f"{item['id']:>6}  {item['created_at']}  {item['event_type']:<24} {item['handler']:<32} "
            f"attempts={item['attempts']}  {state}  {item['error'][:120]}"
        )
    typer.echo(f"{len(items)} of {total}")


@dead_letters_app.command("replay")
def replay(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="dead letter id")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Replay one dead letter to the handler that failed (in this process); exit 1 if it fails again."""
    try:
        result = asyncio.run(_replay(_settings(), dead_letter_id))
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for name, outcome in result["handlers"].items():
            typer.echo(f"dead letter {dead_letter_id}: {name} {outcome}")
    if not result["ok"]:
        raise typer.Exit(1)
