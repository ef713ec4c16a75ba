"""The Redis channel layer under a burst: many staff live pages opening and closing at once."""

import asyncio

import pytest
import redis.asyncio
from channels.layers import get_channel_layer
from django.conf import settings
from websockets.asyncio.client import connect

from conversations.live import live_group
from tests import factories as f
from tests.conftest import running_daphne
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
