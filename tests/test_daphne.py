"""The ingest socket over a real TCP connection to a real Daphne process."""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conversations.models import Conversation, RRWebBatch
from tests import factories as f
from tests.conftest import journal_applied

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
