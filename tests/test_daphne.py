"""The ingest socket over a real TCP connection to a real Daphne process."""

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conversations.models import Conversation, Message, RRWebBatch
from tests import factories as f
from tests.conftest import database_url_for_subprocess, journal_applied, running_daphne

pytestmark = pytest.mark.django_db(transaction=True)


async def _ping(ws) -> dict:
    await ws.send('{"type":"ping"}')
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_a_whole_conversation_streamed_over_daphne_reads_back_exactly(
    daphne_server, source, exporter_client
):
    uuid = f.new_uuid()
    first = f.rrweb_events(count=200)
    later = f.incremental_events(start=f.T0 + 30_000, count=50)
    frames = [
        f.event("webchat start conversation", uuid),
        f.new_conversation(uuid),
        *f.rrweb_parts(uuid, 0, first, parts=3, kind="init"),
        f.message(uuid, "Does the blue kettle come with a warranty?"),
        f.rrweb_frame(uuid, 1, later),
        f.event(
            "typing",
            uuid,
            event_typing={"author_conversation_participant_name": "Bob", "value": "Ye"},
        ),
    ]
    url = f"ws://{daphne_server}/ws/ingest/"
    async with connect(url, additional_headers={"Authorization": f"Bearer {source.raw_key}"}) as ws:
        for frame in frames:
            await ws.send(f.dumps(frame))
        assert await _ping(ws) == {"type": "ping"}
    await asyncio.to_thread(journal_applied)

    def recording() -> dict:
        response = exporter_client.get(f"/api/conversations/{uuid}/recording/")
        return json.loads(b"".join(response.streaming_content))

    body = await asyncio.to_thread(recording)
    assert body["events"] == first + later
    assert [s["segment"] for s in body["segments"]] == [1]
    detail = await asyncio.to_thread(exporter_client.get, f"/api/conversations/{uuid}/")
    data = detail.json()
    assert [m["body"] for m in data["messages"]] == ["Does the blue kettle come with a warranty?"]
    assert {e["event_type"] for e in data["events"]} >= {"typing", "webchat start conversation"}


async def test_wrong_key_over_daphne_is_closed_with_4401(daphne_server, source):
    async with connect(f"ws://{daphne_server}/ws/ingest/?key=rk_nope") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 4401


async def test_parts_of_one_batch_over_two_connections_are_joined(daphne_server, source):
    uuid = f.new_uuid()
    events = f.rrweb_events(count=100)
    parts = f.rrweb_parts(uuid, 0, events, parts=2, kind="init")
    url = f"ws://{daphne_server}/ws/ingest/?key={source.raw_key}"
    async with connect(url) as one, connect(url) as two:
        await one.send(f.dumps(parts[1]))
        assert await _ping(one) == {"type": "ping"}
        await two.send(f.dumps(parts[0]))
        assert await _ping(two) == {"type": "ping"}
    await asyncio.to_thread(journal_applied)

    def stored() -> tuple[int, int]:
        conversation = Conversation.objects.get(uuid=uuid)
        return RRWebBatch.objects.filter(
            conversation=conversation
        ).count(), conversation.rrweb_event_total

    assert await asyncio.to_thread(stored) == (1, len(events))


@contextmanager
def journal_held() -> Iterator[None]:
    """No journal append can commit meanwhile, as while the database is stalled or locked."""
    from django.db import connection

    if connection.vendor == "postgresql":
        import psycopg

        with psycopg.connect(database_url_for_subprocess()) as held:
            held.execute("LOCK TABLE conversations_journalentry IN EXCLUSIVE MODE")
            yield
            held.rollback()
        return
    held = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    held.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        held.execute("ROLLBACK")
        held.close()


def _resident_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))


async def test_a_fast_client_waits_in_its_own_buffers_while_frames_cannot_be_stored(source):
    """While appends cannot commit, the socket is not read: the server's memory stays put.

    Daphne reads a socket as fast as data comes; without flow control one client pushed a
    gigabyte into the server in five seconds of a locked journal. Once appends commit again,
    every frame sent is stored.
    """
    uuid = f.new_uuid()
    body = "Is the blue kettle in stock? " * 1000  # 29 KB a frame
    with running_daphne() as server:
        url = f"ws://{server.address}/ws/ingest/?key={source.raw_key}"
        async with connect(url, max_size=None, compression=None) as ws:
            await ws.send(f.dumps(f.new_conversation(uuid)))
            assert await _ping(ws) == {"type": "ping"}
            before = _resident_mib(server.process.pid)
            sent = count = 0
            with journal_held():
                loop = asyncio.get_running_loop()
                held_until = loop.time() + 3
                while loop.time() < held_until:
                    frame = f.dumps(f.message(uuid, f"{count} {body}"))
                    # Blocks once the server stops reading: let the lock go regardless.
                    try:
                        await asyncio.wait_for(ws.send(frame), held_until - loop.time() + 0.5)
                    except TimeoutError:
                        break
                    sent += len(frame)
                    count += 1
                grown = _resident_mib(server.process.pid) - before
            # Without flow control: hundreds of MB in those 3 s, all of it in the server.
            assert sent < 100 * 2**20, sent
            assert grown < 150, grown
            assert await _ping(ws) == {"type": "ping"}
        await asyncio.to_thread(journal_applied)  # by the server's own worker
    stored = await asyncio.to_thread(Message.objects.filter(conversation__uuid=uuid).count)
    assert stored >= count > 100
