"""The staff live socket: who may watch, and what a watcher receives after a commit."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from conversations import ingest
from conversations.consumers import LiveConsumer
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(uuid: str, user) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(LiveConsumer.as_asgi(), f"/ws/live/{uuid}/")
    comm.scope["user"] = user
    comm.scope["url_route"] = {"kwargs": {"uuid": uuid}}
    return comm


def apply(*frames: dict) -> None:
    ingest.items_apply([ingest.item_from_text(f.dumps(fr)) for fr in frames], source=None)


async def test_anonymous_and_non_staff_users_are_refused(django_user_model):
    uuid = f.new_uuid()
    comm = communicator(uuid, AnonymousUser())
    connected, _ = await comm.connect()
    assert not connected
    user = await database_sync_to_async(django_user_model.objects.create_user)(
        username="clerk", password="pw", is_staff=False
    )
    comm = communicator(uuid, user)
    connected, _ = await comm.connect()
    assert not connected


async def test_routing_refuses_a_foreign_origin(staff_user):
    from replay.asgi import application

    comm = WebsocketCommunicator(
        application, f"/ws/live/{f.new_uuid()}/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await comm.connect()
    assert not connected


async def test_a_watcher_receives_committed_batches_and_messages(staff_user):
    uuid = f.new_uuid()
    await database_sync_to_async(apply)(f.new_conversation(uuid))
    comm = communicator(uuid, staff_user)
    connected, _ = await comm.connect()
    assert connected
    await database_sync_to_async(apply)(
        f.rrweb_frame(uuid, 0, f.rrweb_events(start=f.T0, count=3), kind="init"),
        f.message(uuid, "Can I pay by invoice?", epoch=f.T0 + 500),
    )
    update = await comm.receive_json_from(timeout=5)
    assert [b["meta"][0] for b in update["batches"]] == [0]
    assert update["batches"][0]["events"][0]["type"] == 4
    assert [i["body"] for i in update["items"] if i["kind"] == "message"] == [
        "Can I pay by invoice?"
    ]
    await comm.disconnect()


async def test_a_watcher_of_another_conversation_hears_nothing(staff_user):
    mine, other = f.new_uuid(), f.new_uuid()
    comm = communicator(mine, staff_user)
    assert (await comm.connect())[0]
    await database_sync_to_async(apply)(f.new_conversation(other), f.message(other, "psst"))
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()
