"""``python -m apps.cli dead-letters list|replay`` as a subprocess against a database of its own."""
# ruff: noqa: F811  (pytest fixtures imported from tests.support.events are redefined as parameters)

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime

import asyncpg

from core.events.types import ReadingsIngested
from core.observability.agent import HANDLER_NAME
from tests.support.cli import run_cli
from tests.support.events import events_database_url, events_db  # noqa: F401  (fixtures)


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(database_url, "dead-letters", *args, SM_LOG_LEVEL="WARNING")


async def insert_dead_letter(conn: asyncpg.Connection, handler: str) -> int:
    now = datetime.now(UTC)
    event = ReadingsIngested(
        sensor_ids=["s-1"], count=2, first_timestamp=now, last_timestamp=now, ingest_event_id=uuid.uuid4()
    )
    return int(
        await conn.fetchval(
            "INSERT INTO dead_letters (event_type, payload, handler, error, attempts) "
            "VALUES ($1, $2::jsonb, $3, 'RuntimeError: down', 5) RETURNING id",
            event.event_type,
            json.dumps(event.to_payload()),
            handler,
        )
    )


async def test_cli_lists_and_replays_a_dead_letter_once(
    events_database_url: str, events_db: asyncpg.Connection
) -> None:
    dl_id = await insert_dead_letter(events_db, HANDLER_NAME)

    listed = cli(events_database_url, "list", "--pending", "--json")
    assert listed.returncode == 0, listed.stderr
    page = json.loads(listed.stdout)
    assert [i["id"] for i in page["items"]] == [dl_id] and page["items"][0]["handler"] == HANDLER_NAME

    done = cli(events_database_url, "replay", str(dl_id))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"dead letter {dl_id}: {HANDLER_NAME} ok" in done.stdout
    assert await events_db.fetchval("SELECT replayed_at FROM dead_letters WHERE id = $1", dl_id) is not None
    assert await events_db.fetchval("SELECT count(*) FROM dead_letters") == 1, "no new dead letter"

    again = cli(events_database_url, "replay", str(dl_id))
    assert again.returncode == 1
    assert "already replayed" in again.stderr

    text = cli(events_database_url, "list")
    assert text.returncode == 0 and "replayed" in text.stdout and "1 of 1" in text.stdout


async def test_cli_replay_refuses_unknown_ids_and_handlers(
    events_database_url: str, events_db: asyncpg.Connection
) -> None:
    missing = cli(events_database_url, "replay", "123456")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    dl_id = await insert_dead_letter(events_db, "retired.handler")
    refused = cli(events_database_url, "replay", str(dl_id))
    assert refused.returncode == 1 and "not subscribed" in refused.stderr
    assert await events_db.fetchval("SELECT replayed_at FROM dead_letters WHERE id = $1", dl_id) is None
