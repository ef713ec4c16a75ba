"""Ingest workers between rounds: what wakes them, and that nothing appended goes unheard.

Each test gives workers an idle wait far longer than it waits itself, so an append is only
applied in time if the worker was woken for it.
"""

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from django.db import connections
from django.utils import timezone

from conversations.ingest import journal, worker
from conversations.ingest.worker import Worker
from conversations.models import Message
from tests import factories as f
from tests.test_browser import in_thread

pytestmark = pytest.mark.django_db(transaction=True)

IDLE_WAIT = 30  # seconds; every test fails after 10


def append(*frames: dict) -> None:
    """Append frames to the journal, as an ingest socket does."""
    now = timezone.now()
    journal.journal_append(
        [
            journal.frame_read(f.dumps(fr), None, source_id=None, received_at=now).row
            for fr in frames
        ]
    )


async def until_stored(body: str) -> None:
    stored = database_sync_to_async(Message.objects.filter(body=body).exists)
    for _ in range(100):
        if await stored():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{body!r} was not applied within 10 s")


async def stopped(running: Worker, task: asyncio.Task, *, nudge: bool) -> None:
    """Stop a worker: set its stop event beforehand, then wake it (`nudge`: by an append)."""
    running.wake()
    if nudge:  # a standalone worker waits in its thread: an append ends the wait
        await database_sync_to_async(append)(f.new_conversation(f.new_uuid()))
    await asyncio.wait_for(task, IDLE_WAIT + 10)
    await running._in_thread(connections.close_all)  # its thread keeps its own connection


async def test_an_append_announced_while_a_round_runs_starts_the_next_round_at_once(
    settings, monkeypatch
):
    settings.REPLAY_WORKER_IDLE_WAIT = IDLE_WAIT
    in_round, go_on = threading.Event(), threading.Event()
    apply_round = worker.journal_apply_round

    def first_round_waits():
        applied = apply_round()
        if not in_round.is_set():  # the journal is read: what comes now is too late for it
            in_round.set()
            go_on.wait(10)
        return applied

    monkeypatch.setattr(worker, "journal_apply_round", first_round_waits)
    embedded, stop = Worker(), asyncio.Event()
    task = asyncio.ensure_future(embedded.run(stop=stop))
    await asyncio.to_thread(in_round.wait, 10)
    uuid = f.new_uuid()
    await database_sync_to_async(append)(f.new_conversation(uuid), f.message(uuid, "Just now"))
    embedded.wake()  # as the journal writer does after each commit
    go_on.set()
    await until_stored("Just now")
    stop.set()
    await stopped(embedded, task, nudge=False)


async def test_a_standalone_worker_applies_what_is_appended_while_it_waits(settings, monkeypatch):
    settings.REPLAY_WORKER_IDLE_WAIT = IDLE_WAIT
    waiting = threading.Event()
    wait = Worker._wait_for_appends

    def noted_wait(self, timeout: float) -> None:
        waiting.set()
        wait(self, timeout)

    monkeypatch.setattr(Worker, "_wait_for_appends", noted_wait)
    standalone, stop = Worker(), asyncio.Event()
    task = asyncio.ensure_future(standalone.run(stop=stop, listen=True))
    await asyncio.to_thread(waiting.wait, 10)  # the journal was empty: it waits
    uuid = f.new_uuid()
    # From this process's connection, as another process's front would: no wake() call.
    await database_sync_to_async(append)(f.new_conversation(uuid), f.message(uuid, "Hello?"))
    await until_stored("Hello?")
    stop.set()
    await stopped(standalone, task, nudge=True)


def test_two_workers_share_the_conversations_waiting_rather_than_one_taking_all():
    """A round claims at most half the conversations waiting: the end of a backlog is shared."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("claims are PostgreSQL advisory locks; SQLite runs one worker")
    uuids = [f.new_uuid() for _ in range(4)]
    append(*(f.message(uuid, f"Hello from {uuid}") for uuid in uuids))
    first_ids, first_held = worker._claim(max_entries=500, max_bytes=1 << 30)
    try:
        # Another worker: its own thread, so its own connection and locks (gone with it).
        second_ids, second_held = in_thread(worker._claim, max_entries=500, max_bytes=1 << 30)
        assert len(first_held) == len(second_held) == 2
        assert sorted(first_held + second_held) == sorted(uuids)
        assert not set(first_ids) & set(second_ids)
    finally:
        worker._release(first_held)
