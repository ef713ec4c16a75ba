"""The public ingest door: sizes, quotas and revoked keys, as a sender meets them."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conversations.keys import ingest_key_create, ingest_key_revoke
from conversations.models import Message, RejectedFrame
from replay.asgi import application
from tests import factories as f
from tests.conftest import journal_applied

pytestmark = pytest.mark.django_db(transaction=True)

PING = '{"type":"ping"}'


def communicator(key: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/ingest/?key={key}")


async def ping(comm: WebsocketCommunicator) -> dict:
    await comm.send_to(text_data=PING)
    return json.loads(await comm.receive_from(timeout=5))


@database_sync_to_async
def rejected() -> list[tuple[str, str]]:
    return list(RejectedFrame.objects.order_by("id").values_list("kind", "reason"))


async def test_a_frame_between_the_limit_and_the_hard_cap_is_kept_aside_and_the_socket_goes_on(
    daphne_server, source
):
    uuid = f.new_uuid()
    url = f"ws://{daphne_server}/ws/ingest/?key={source.raw_key}"
    big = f.dumps(f.message(uuid, "x" * (2 * 1024 * 1024)))  # 2 MiB: over the 1 MiB limit
    async with connect(url, max_size=None) as ws:
        await ws.send(big)
        await ws.send(f.dumps(f.message(uuid, "still here")))
        await ws.send(PING)
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "ping"}
    await asyncio.to_thread(journal_applied)
    assert await database_sync_to_async(Message.objects.count)() == 1
    ((kind, reason),) = await rejected()
    assert kind == "too_large" and "over the limit of 1048576 bytes" in reason


async def test_a_frame_over_the_hard_cap_is_refused_with_1009_and_a_reason(daphne_server, source):
    url = f"ws://{daphne_server}/ws/ingest/?key={source.raw_key}"
    async with connect(url, max_size=None) as ws:
        # The server may refuse before the client has written the whole frame.
        with pytest.raises(ConnectionClosed) as closed:
            await ws.send("x" * (17 * 1024 * 1024))
            await asyncio.wait_for(ws.recv(), 20)
    assert closed.value.rcvd.code == 1009
    assert "exceeds payload limit of 16777216" in closed.value.rcvd.reason


@override_settings(REPLAY_KEY_MAX_CONNECTIONS=2)
async def test_connections_beyond_the_keys_limit_are_closed_with_4429(source):
    first, second, third = (communicator(source.raw_key) for _ in range(3))
    for comm in (first, second):
        await comm.connect()
        assert await ping(comm) == {"type": "ping"}
    await third.connect()
    closed = await third.receive_output(timeout=5)
    assert closed["code"] == 4429 and "REPLAY_KEY_MAX_CONNECTIONS=2" in closed["reason"]
    await first.disconnect()
    fourth = communicator(source.raw_key)  # a place is free again
    await fourth.connect()
    assert await ping(fourth) == {"type": "ping"}
    for comm in (second, third, fourth):
        await comm.disconnect()


@override_settings(REPLAY_CONNECTION_FRAMES_PER_SECOND=5, REPLAY_QUOTA_BURST_SECONDS=2)
async def test_a_connection_over_its_rate_is_closed_with_4429_and_keeps_what_it_sent(source, drain):
    uuid = f.new_uuid()
    flooder, other = communicator(source.raw_key), communicator(source.raw_key)
    await flooder.connect()
    await other.connect()
    for n in range(15):
        await flooder.send_to(text_data=f.dumps(f.message(uuid, f"m{n}")))
    closed = await flooder.receive_output(timeout=5)
    assert closed["code"] == 4429
    assert "REPLAY_CONNECTION_FRAMES_PER_SECOND" in closed["reason"]
    # Another connection of the same key has its own rate.
    assert await ping(other) == {"type": "ping"}
    await flooder.disconnect()
    await other.disconnect()
    await drain()
    assert await database_sync_to_async(Message.objects.count)() == 10  # the burst allowed


@override_settings(REPLAY_KEY_FRAMES_PER_SECOND=5, REPLAY_QUOTA_BURST_SECONDS=2)
async def test_one_keys_rate_never_limits_another_key(source):
    _, other_key = await database_sync_to_async(ingest_key_create)(name="other.example")
    flooder = communicator(source.raw_key)
    await flooder.connect()
    for n in range(15):
        await flooder.send_to(text_data=f.dumps(f.message(f.new_uuid(), f"m{n}")))
    assert (await flooder.receive_output(timeout=5))["code"] == 4429
    innocent = communicator(other_key)
    await innocent.connect()
    for n in range(8):
        await innocent.send_to(text_data=f.dumps(f.message(f.new_uuid(), f"m{n}")))
    assert await ping(innocent) == {"type": "ping"}
    await flooder.disconnect()
    await innocent.disconnect()


@override_settings(REPLAY_KEY_NEW_CONVERSATIONS_PER_MINUTE=3)
async def test_conversations_over_the_keys_quota_are_kept_aside_with_the_reason(source, drain):
    comm = communicator(source.raw_key)
    await comm.connect()
    uuids = [f.new_uuid() for _ in range(5)]
    for uuid in uuids:
        await comm.send_to(text_data=f.dumps(f.message(uuid, "hello")))
    await comm.send_to(text_data=f.dumps(f.message(uuids[0], "an existing one still passes")))
    assert await ping(comm) == {"type": "ping"}
    await comm.disconnect()
    await drain()
    assert await database_sync_to_async(Message.objects.count)() == 4
    reasons = await rejected()
    assert [kind for kind, _ in reasons] == ["quota", "quota"]
    assert "REPLAY_KEY_NEW_CONVERSATIONS_PER_MINUTE" in reasons[0][1]


@override_settings(REPLAY_KEY_CHECK_INTERVAL=0.2)
async def test_a_revoked_keys_open_sockets_are_closed_with_4401(source):
    _, other_key = await database_sync_to_async(ingest_key_create)(name="other.example")
    revoked, kept = communicator(source.raw_key), communicator(other_key)
    for comm in (revoked, kept):
        await comm.connect()
        assert await ping(comm) == {"type": "ping"}
    await database_sync_to_async(ingest_key_revoke)(key=source)
    closed = await revoked.receive_output(timeout=5)
    assert closed["code"] == 4401 and closed["reason"] == "this ingest key was revoked"
    assert await ping(kept) == {"type": "ping"}
    await revoked.disconnect()
    await kept.disconnect()
