"""The Redis channel layer under a burst: many staff live pages opening and closing at once."""

import asyncio
import json
import signal

import pytest
import redis.asyncio
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from websockets.asyncio.client import connect

from conversations import ingest
from conversations.live import live_group, live_notify_async
from tests import factories as f
from tests.conftest import running_daphne
from tests.test_live import apply
from tests.test_quiet_sockets import redis_url  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = 150  # more than the 100 connections a redis-py pool holds by default


@pytest.fixture
def logged_server(transactional_db, tmp_path):
    """A Daphne process whose output the test reads afterwards."""
    with running_daphne(log=tmp_path / "daphne.log") as server:
        yield server


async def test_many_live_pages_closing_at_once_all_leave_their_conversations_group(
    redis_url,  # noqa: F811
    staff_client,
    logged_server,
):
    server = logged_server
    uuid = f.new_uuid()
    session = staff_client.cookies[settings.SESSION_COOKIE_NAME].value
    group_key = f"{get_channel_layer().prefix}:group:{live_group(uuid)}"
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        pages = await asyncio.gather(
            *(
                connect(
                    f"ws://{server.address}/ws/live/{uuid}/",
                    origin=f"http://{server.address}",
                    additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
                )
                for _ in range(PAGES)
            )
        )
        for _ in range(100):
            if await client.zcard(group_key) == PAGES:
                break
            await asyncio.sleep(0.1)
        assert await client.zcard(group_key) == PAGES

        for page in pages:  # a staff member's browser quits: every tab's connection drops
            page.transport.abort()
        for _ in range(100):
            if await client.zcard(group_key) == 0:
                break
            await asyncio.sleep(0.1)
        # A page that stayed a member would be sent every update of the day to nobody.
        assert await client.zcard(group_key) == 0
        assert "Too many connections" not in server.log.read_text()
    finally:
        await client.delete(group_key)
        await client.aclose()


async def test_the_layer_tells_which_groups_have_members(redis_url):  # noqa: F811
    layer = get_channel_layer()
    watched, left, empty = (live_group(f.new_uuid()) for _ in range(3))
    page, gone = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(watched, page)
    await layer.group_add(left, gone)
    await layer.group_discard(left, gone)
    try:
        assert await layer.groups_watched([watched, left, empty]) == {watched}
        assert await layer.groups_watched([]) == set()
    finally:
        await layer.group_discard(watched, page)


UPDATES = 60  # a conversation's updates while its server is held up: 180 for three


async def test_updates_that_pile_up_while_a_server_is_held_up_all_reach_its_pages(
    redis_url,  # noqa: F811
    staff_client,
    logged_server,
):
    """channels_redis queues all of a process's sockets' messages under one key, which holds
    100 by default and drops the rest: a busy server's pages silently missed updates."""
    server = logged_server
    uuids = [f.new_uuid() for _ in range(3)]
    await database_sync_to_async(apply)(*(f.new_conversation(uuid) for uuid in uuids))
    session = staff_client.cookies[settings.SESSION_COOKIE_NAME].value
    pages = [
        await connect(
            f"ws://{server.address}/ws/live/{uuid}/",
            origin=f"http://{server.address}",
            additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
        )
        for uuid in uuids
    ]
    try:
        for page in pages:
            await asyncio.wait_for(page.recv(), 10)  # caught up: it is in its group
        server.process.send_signal(signal.SIGSTOP)  # a long pause: nothing is read meanwhile
        try:
            for number in range(UPDATES):
                items = [
                    ingest.item_from_text(f.dumps(f.message(uuid, f"{uuid} {number}")))
                    for uuid in uuids
                ]
                stored = await database_sync_to_async(ingest.items_store)(items, source=None)
                for note in stored[1]:  # one update each, as separate rounds send them
                    await live_notify_async([note])
        finally:
            server.process.send_signal(signal.SIGCONT)
        for uuid, page in zip(uuids, pages, strict=True):
            shown: set[str] = set()
            while len(shown) < UPDATES:
                update = json.loads(await asyncio.wait_for(page.recv(), 30))
                shown.update(i["body"] for i in update["items"] if i["kind"] == "message")
            assert shown == {f"{uuid} {number}" for number in range(UPDATES)}
    finally:
        await asyncio.gather(*(page.close() for page in pages))
