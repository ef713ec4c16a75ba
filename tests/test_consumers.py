"""The ingest socket, through Channels' WebsocketCommunicator."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import DatabaseError, connection
from django.test import override_settings

from conversations.models import JournalEntry, Message, RejectedFrame, RRWebBatch
from replay.asgi import application
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(path: str = "/ws/ingest/", *, key: str | None = None, header: str | None = None):
    headers = [(b"authorization", f"Bearer {header}".encode())] if header else []
    if key is not None:
        path = f"{path}?key={key}"
    return WebsocketCommunicator(application, path, headers=headers)


async def ping(comm: WebsocketCommunicator) -> dict:
    await comm.send_to(text_data='{"type":"ping"}')
    return json.loads(await comm.receive_from(timeout=5))


@database_sync_to_async
def count(model) -> int:
    return model.objects.count()


async def test_missing_key_is_refused_with_4401_before_any_frame_is_read(source):
    comm = communicator()
    await comm.connect()
    closed = await comm.receive_output(timeout=5)
    assert (
        closed == {"type": "websocket.close", "code": 4401, "reason": ""} or closed["code"] == 4401
    )
    await comm.disconnect()
    assert await count(RejectedFrame) == 0


async def test_wrong_and_revoked_keys_are_refused(source):
    comm = communicator(key="rk_wrong")
    await comm.connect()
    assert (await comm.receive_output(timeout=5))["code"] == 4401
    await comm.disconnect()

    from conversations.keys import ingest_key_revoke

    await database_sync_to_async(ingest_key_revoke)(key=source)
    comm = communicator(key=source.raw_key)
    await comm.connect()
    assert (await comm.receive_output(timeout=5))["code"] == 4401
    await comm.disconnect()


async def test_sockets_opening_together_each_get_their_own_keys_answer(source):
    """Keys presented at once are looked up together; no socket gets another's answer."""
    from conversations.keys import ingest_key_create, ingest_key_revoke

    other, other_raw = await database_sync_to_async(ingest_key_create)(name="other.example")
    revoked, revoked_raw = await database_sync_to_async(ingest_key_create)(name="gone.example")
    await database_sync_to_async(ingest_key_revoke)(key=revoked)
    keys = [source.raw_key, "rk_wrong", other_raw, revoked_raw, ""] * 6
    comms = [communicator(key=key) for key in keys]
    await asyncio.gather(*(comm.connect() for comm in comms))
    for key, comm in zip(keys, comms, strict=True):
        if key in (source.raw_key, other_raw):
            assert await ping(comm) == {"type": "ping"}, key
        else:
            assert (await comm.receive_output(timeout=5))["code"] == 4401, key
    await asyncio.gather(*(comm.disconnect() for comm in comms))
    for key in (source, other):
        await database_sync_to_async(key.refresh_from_db)()
        assert key.last_used_at is not None
    await database_sync_to_async(revoked.refresh_from_db)()
    assert revoked.last_used_at is None


@pytest.mark.parametrize("how", ["query", "header"])
async def test_key_in_query_or_bearer_header_is_accepted_and_ping_answered(source, how):
    comm = (
        communicator(key=source.raw_key) if how == "query" else communicator(header=source.raw_key)
    )
    connected, _ = await comm.connect()
    assert connected
    assert await ping(comm) == {"type": "ping"}
    await comm.disconnect()


async def test_ping_is_answered_only_after_everything_before_it_is_in_the_journal(source, drain):
    uuid = f.new_uuid()
    comm = communicator(key=source.raw_key)
    await comm.connect()
    await comm.send_to(text_data=f.dumps(f.rrweb_frame(uuid, 0, f.rrweb_events(), kind="init")))
    for n in range(20):
        await comm.send_to(text_data=f.dumps(f.message(uuid, f"message {n}")))
    assert await ping(comm) == {"type": "ping"}
    # The answer came: every frame is committed to the journal, visible from another
    # connection, and a worker applies all of them to the archive.
    assert await count(JournalEntry) == 21
    assert await drain() == 21
    assert await count(Message) == 20
    assert await count(RRWebBatch) == 1
    assert await count(JournalEntry) == 0
    await comm.disconnect()


async def test_check_queue_position_is_answered_with_a_queue_position_event(source):
    uuid = f.new_uuid()
    comm = communicator(key=source.raw_key)
    await comm.connect()
    await comm.send_to(
        text_data=f.dumps({"type": "check queue position", "conversation_uuid": uuid})
    )
    reply = json.loads(await comm.receive_from(timeout=5))
    assert reply == {
        "type": "event",
        "event_type": "queue position",
        "conversation_uuid": uuid,
        "event_queue_position": {"available": False, "position": -1},
    }
    await comm.disconnect()


async def test_bad_frames_are_kept_and_the_connection_goes_on(source, drain):
    uuid = f.new_uuid()
    comm = communicator(key=source.raw_key)
    await comm.connect()
    await comm.send_to(text_data="{broken")
    await comm.send_to(bytes_data=b"\x89PNG")
    await comm.send_to(
        text_data='{"type": "event", "event_type": "rrweb", "conversation_uuid": "x"}'
    )
    await comm.send_to(text_data=f.dumps(f.message(uuid, "still here")))
    assert await ping(comm) == {"type": "ping"}
    await drain()
    assert await count(RejectedFrame) == 3
    assert await count(Message) == 1
    await comm.disconnect()


@override_settings(REPLAY_REJECT_LIMIT=5)
async def test_a_source_flooding_bad_frames_is_cut_off_with_4429_and_its_frames_kept(source, drain):
    comm = communicator(key=source.raw_key)
    await comm.connect()
    for n in range(5):
        await comm.send_to(text_data=f"not json {n}")
    await comm.send_to(text_data='{"type":"ping"}')
    # The ping is answered (the bad frames are in the journal), then the door closes.
    assert json.loads(await comm.receive_from(timeout=5)) == {"type": "ping"}
    output = await comm.receive_output(timeout=5)
    assert output["type"] == "websocket.close" and output["code"] == 4429
    await drain()
    assert await count(RejectedFrame) == 5
    await comm.disconnect()


async def test_frames_sent_without_a_ping_are_stored_when_the_connection_closes(source, drain):
    uuid = f.new_uuid()
    comm = communicator(key=source.raw_key)
    await comm.connect()
    for n in range(3):
        await comm.send_to(text_data=f.dumps(f.message(uuid, f"m{n}")))
    await comm.disconnect()
    await drain()
    assert await count(Message) == 3


@override_settings(REPLAY_FLUSH_DELAY=30)
async def test_a_chat_message_reaches_the_journal_at_once_and_batches_wait_for_their_group(
    source,
):
    """Staff watch messages live: a message is appended without the group's delay."""
    uuid = f.new_uuid()
    comm = communicator(key=source.raw_key)
    await comm.connect()
    await comm.send_to(text_data=f.dumps(f.rrweb_frame(uuid, 0, f.rrweb_events(), kind="init")))
    await comm.send_to(text_data=f.dumps(f.rrweb_frame(uuid, 1, f.rrweb_events())))
    await asyncio.sleep(0.5)
    assert await count(JournalEntry) == 0  # batches wait for more (30 s here) or a ping
    await comm.send_to(text_data=f.dumps(f.message(uuid, "hello, anyone there?")))
    for _ in range(100):
        if await count(JournalEntry) == 3:
            break
        await asyncio.sleep(0.02)
    # The message went at once, with the batches before it, in order; no ping was sent.
    assert await count(JournalEntry) == 3
    await comm.disconnect()


async def test_a_flood_of_chat_messages_is_appended_in_groups_not_one_by_one(
    source, drain, monkeypatch
):
    """A message skips the delay, but one behind a group being appended waits for it.

    Otherwise every message of a flood is a commit of its own, and on SQLite a shop's
    2,000 new conversations take a minute to be acknowledged.
    """
    from conversations.ingest import journal

    commits = []
    real = journal.journal_append_checked

    def counting(rows):
        commits.append(len(rows))
        real(rows)

    monkeypatch.setattr(journal, "journal_append_checked", counting)
    uuid = f.new_uuid()
    comm = communicator(key=source.raw_key)
    await comm.connect()
    for n in range(300):
        await comm.send_to(text_data=f.dumps(f.message(uuid, f"m{n}")))
    assert await ping(comm) == {"type": "ping"}
    assert sum(commits) == 300
    assert len(commits) <= 100, commits
    await drain()
    assert await count(Message) == 300
    await comm.disconnect()


async def test_frames_are_acknowledged_while_djangos_synchronous_thread_is_busy(source, drain):
    """A slow page or export on Django's one synchronous thread must not hold up ingest."""
    import threading

    from asgiref.sync import sync_to_async

    uuid = f.new_uuid()
    comm = communicator(key=source.raw_key)
    await comm.connect()
    busy = asyncio.ensure_future(sync_to_async(threading.Event().wait)(3))
    await asyncio.sleep(0.1)
    await comm.send_to(text_data=f.dumps(f.message(uuid, "hello")))
    await comm.send_to(text_data='{"type":"ping"}')
    assert json.loads(await comm.receive_from(timeout=2)) == {"type": "ping"}
    assert not busy.done()
    await busy
    await drain()
    assert await count(Message) == 1
    await comm.disconnect()


def _rename_table(old: str, new: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {old} RENAME TO {new}")


async def test_journal_failure_closes_with_1011_without_answering_and_resend_stores(source, drain):
    uuid = f.new_uuid()
    frame = f.dumps(f.rrweb_frame(uuid, 0, f.rrweb_events(), kind="init"))
    comm = communicator(key=source.raw_key)
    await comm.connect()
    await database_sync_to_async(_rename_table)("conversations_journalentry", "journal_away")
    try:
        await comm.send_to(text_data=f.dumps(f.message(uuid, "in the same group")))
        await comm.send_to(text_data=frame)
        await comm.send_to(text_data='{"type":"ping"}')
        output = await comm.receive_output(timeout=5)
        assert output == {"type": "websocket.close", "code": 1011} or output.get("code") == 1011
    finally:
        await database_sync_to_async(_rename_table)("journal_away", "conversations_journalentry")
    await comm.disconnect()
    # Nothing of the failed group was committed: not even the message before the batch.
    assert await count(JournalEntry) == 0

    comm = communicator(key=source.raw_key)
    await comm.connect()
    await comm.send_to(text_data=f.dumps(f.message(uuid, "in the same group")))
    await comm.send_to(text_data=frame)
    assert await ping(comm) == {"type": "ping"}
    await drain()
    assert await count(RRWebBatch) == 1 and await count(Message) == 1
    await comm.disconnect()


async def test_an_archive_failure_keeps_frames_in_the_journal_until_the_archive_is_back(
    source, drain
):
    uuid = f.new_uuid()
    comm = communicator(key=source.raw_key)
    await comm.connect()
    await comm.send_to(text_data=f.dumps(f.message(uuid, "before the outage")))
    await comm.send_to(text_data=f.dumps(f.rrweb_frame(uuid, 0, f.rrweb_events(), kind="init")))
    assert await ping(comm) == {"type": "ping"}
    await comm.disconnect()
    await database_sync_to_async(_rename_table)("conversations_rrwebbatch", "rrweb_away")
    try:
        with pytest.raises(DatabaseError):
            await drain()
    finally:
        await database_sync_to_async(_rename_table)("rrweb_away", "conversations_rrwebbatch")
    # Nothing was lost or kept aside: the frames wait in the journal, then apply.
    assert await count(JournalEntry) == 2 and await count(RejectedFrame) == 0
    assert await drain() == 2
    assert await count(RRWebBatch) == 1 and await count(Message) == 1
