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


async def receive_or_none(layer, channel: str, timeout: float = 0.5) -> dict | None:
    try:
        return await asyncio.wait_for(layer.receive(channel), timeout)
    except TimeoutError:
        return None


async def test_sending_to_many_groups_at_once_reaches_each_member_in_order(redis_url):  # noqa: F811
    layer = get_channel_layer()
    two, one, nobody = (live_group(f.new_uuid()) for _ in range(3))
    pages = [await layer.new_channel() for _ in range(4)]  # one process's sockets
    joined = [(two, pages[0]), (two, pages[1]), (one, pages[2])]
    for group, page in joined:
        await layer.group_add(group, page)
    try:
        for number in range(2):
            await layer.group_send_many(
                {
                    group: {"type": "live.update", "group": group, "n": number}
                    for group in (two, one, nobody)
                }
            )
        for group, page in joined:
            for number in range(2):
                message = await asyncio.wait_for(layer.receive(page), 5)
                assert (message["group"], message["n"]) == (group, number)
        assert await receive_or_none(layer, pages[3]) is None
        assert await receive_or_none(layer, pages[0]) is None  # once each
    finally:
        for group, page in joined:
            await layer.group_discard(group, page)


async def test_a_message_to_a_full_channel_is_reported_and_the_others_still_go(
    redis_url,  # noqa: F811
    caplog,
):
    from replay.layers import RedisChannelLayer

    small = RedisChannelLayer(hosts=[redis_url], prefix=f"test{f.new_uuid()[:8]}", capacity=1)
    full, free = live_group(f.new_uuid()), live_group(f.new_uuid())
    slow = await small.new_channel()
    await small.group_add(full, slow)
    await small.group_add(free, "elsewhere.quick")  # not one of this process's channels
    try:
        await small.group_send_many({full: {"type": "live.update", "n": 0}})
        await small.group_send_many(
            {full: {"type": "live.update", "n": 1}, free: {"type": "live.update", "n": 1}}
        )
        assert "is full: a message to group " + full in caplog.text
        assert (await asyncio.wait_for(small.receive(slow), 5))["n"] == 0
        assert (await asyncio.wait_for(small.receive("elsewhere.quick"), 5))["n"] == 1
        assert await receive_or_none(small, slow) is None
    finally:
        await small.flush()
        await small.close_pools()
