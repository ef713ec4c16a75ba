"""Sockets that stay quiet for a long while stay open: ingest sockets and staff live pages.

On Redis, a channel-layer receive used to give up after a few quiet seconds and take its
consumer down with 1011 (see the channel layer in replay/settings.py). The in-memory layer
never did, so the tests of silence itself need REDIS_URL.
"""

import asyncio
import json
import os

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from websockets.asyncio.client import connect

from conversations.consumers import IngestConsumer, LiveConsumer
from tests import factories as f
from tests.conftest import poll, require

pytestmark = pytest.mark.django_db(transaction=True)

QUIET_SECONDS = 60


@pytest.fixture
def redis_url() -> str:
    """REDIS_URL, which must answer; without it (CI's SQLite run has none) the test is skipped."""
    import redis

    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set: the in-memory channel layer has no read timeout")
    client = redis.Redis.from_url(url)
    try:
        answers = client.ping()
    except redis.exceptions.ConnectionError:
        answers = False
    finally:
        client.close()
    require(answers, f"Redis at {url} does not answer")
    return url


def test_ingest_sockets_hold_no_channel_layer_and_live_sockets_do():
    assert get_channel_layer(IngestConsumer.channel_layer_alias) is None
    assert get_channel_layer(LiveConsumer.channel_layer_alias) is not None


def test_the_redis_layer_reads_for_longer_than_a_receive_blocks(redis_url):
    from channels_redis.core import RedisChannelLayer

    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)
    pool = layer.create_pool(0)
    timeout = pool.connection_class(**pool.connection_kwargs).socket_timeout  # not connected
    assert timeout is None or timeout > RedisChannelLayer.brpop_timeout


async def _ping(ws) -> dict:
    await ws.send('{"type":"ping"}')
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def _stays_quiet_and_open(ws, seconds: float) -> None:
    """Neither a message nor a close arrives on `ws` for `seconds`."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), seconds)


async def test_quiet_ingest_and_live_sockets_stay_open_and_working_on_redis(
    redis_url, daphne_server, source, staff_client
):
    uuid = f.new_uuid()
    first = f.rrweb_events(count=5)
    # Browsers send no keepalive pings of their own; neither do these clients.
    ingest = await connect(
        f"ws://{daphne_server}/ws/ingest/?key={source.raw_key}", ping_interval=None
    )
    for frame in (f.new_conversation(uuid), f.rrweb_frame(uuid, 0, first, kind="init")):
        await ingest.send(f.dumps(frame))
    assert await _ping(ingest) == {"type": "ping"}

    def batch_indexes() -> list[int]:
        response = staff_client.get(f"/conversations/{uuid}/recording/index.json")
        return (
            [batch[0] for batch in response.json()["batches"]]
            if response.status_code == 200
            else []
        )

    await asyncio.to_thread(poll, batch_indexes, what="the first batch to be stored")
    session = staff_client.cookies[settings.SESSION_COOKIE_NAME].value
    watcher = await connect(
        f"ws://{daphne_server}/ws/live/{uuid}/?after=0",
        origin=f"http://{daphne_server}",
        additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
        ping_interval=None,
    )
    try:
        caught_up = json.loads(await asyncio.wait_for(watcher.recv(), 10))
        assert caught_up["batches"] == []

        # One wait for both: a minute without a frame, many times what used to close them.
        await asyncio.gather(
            _stays_quiet_and_open(ingest, QUIET_SECONDS),
            _stays_quiet_and_open(watcher, QUIET_SECONDS),
        )

        assert await _ping(ingest) == {"type": "ping"}
        later = f.incremental_events(start=f.T0 + 5_000, count=3)
        await ingest.send(f.dumps(f.rrweb_frame(uuid, 1, later)))
        assert await _ping(ingest) == {"type": "ping"}
        update = json.loads(await asyncio.wait_for(watcher.recv(), 10))
        assert [batch["meta"][0] for batch in update["batches"]] == [1]
        assert update["batches"][0]["events"] == later
    finally:
        await watcher.close()
        await ingest.close()
