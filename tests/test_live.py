"""The staff live socket: who may watch, and what a watcher receives after a commit."""

import asyncio
import json
import threading
from datetime import UTC, datetime

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from conversations import ingest, selectors
from conversations.consumers import LiveConsumer
from conversations.live import live_notify_async
from conversations.models import Conversation
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(uuid: str, user, query: str = "") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(LiveConsumer.as_asgi(), f"/ws/live/{uuid}/{query}")
    comm.scope["user"] = user
    comm.scope["url_route"] = {"kwargs": {"uuid": uuid}}
    return comm


def apply(*frames: dict) -> None:
    ingest.items_apply([ingest.item_from_text(f.dumps(fr)) for fr in frames], source=None)


async def watching(uuid: str, user) -> WebsocketCommunicator:
    """A live page open on `uuid`, its catch-up read: it hears every update from here on."""
    comm = communicator(uuid, user)
    assert (await comm.connect())[0]
    await comm.receive_json_from(timeout=5)
    return comm


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
    caught_up = await comm.receive_json_from(timeout=5)
    assert caught_up["batches"] == []
    assert [i["text"] for i in caught_up["items"]] == ["Conversation started"]
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


async def test_a_watcher_first_receives_the_batches_after_its_cursor_and_the_whole_transcript(
    staff_user,
):
    uuid = f.new_uuid()
    later = f.incremental_events(start=f.T0 + 5_000, count=4)
    await database_sync_to_async(apply)(
        f.new_conversation(uuid),
        f.rrweb_frame(uuid, 0, f.rrweb_events(start=f.T0, count=3), kind="init"),
        f.message(uuid, "Seen before the page dropped", epoch=f.T0 + 500),
        f.rrweb_frame(uuid, 1, later),
        f.message(uuid, "Sent while it was away", epoch=f.T0 + 6_000),
    )
    comm = communicator(uuid, staff_user, "?after=0")
    assert (await comm.connect())[0]
    caught_up = await comm.receive_json_from(timeout=5)
    assert [b["meta"][0] for b in caught_up["batches"]] == [1]
    assert caught_up["batches"][0]["events"] == later
    assert [i["body"] for i in caught_up["items"] if i["kind"] == "message"] == [
        "Seen before the page dropped",
        "Sent while it was away",
    ]
    await comm.disconnect()


async def test_a_watcher_without_a_cursor_receives_every_batch_packed_or_not(staff_user):
    from conversations.packing import recordings_pack

    uuid = f.new_uuid()
    batches = [
        f.rrweb_events(start=f.T0, count=5),
        f.incremental_events(start=f.T0 + 3_000, count=5),
        f.rrweb_events(start=f.T0 + 60_000, count=5, href="https://shop.example/cart"),
    ]
    await database_sync_to_async(apply)(
        f.new_conversation(uuid),
        *[
            f.rrweb_frame(uuid, index, events, kind="events" if index == 1 else "init")
            for index, events in enumerate(batches)
        ],
    )
    assert await database_sync_to_async(recordings_pack)() == 1  # the first page load
    for query in ("", "?after=nonsense"):
        comm = communicator(uuid, staff_user, query)
        assert (await comm.connect())[0]
        caught_up = await comm.receive_json_from(timeout=5)
        assert [b["events"] for b in caught_up["batches"]] == batches
        await comm.disconnect()


def apply_received(received_ms: int, *frames: dict) -> None:
    """Apply frames as if the server received them at `received_ms` (epoch ms)."""
    at = datetime.fromtimestamp(received_ms / 1000, tz=UTC)
    ingest.items_apply(
        [ingest.item_from_text(f.dumps(fr), received_at=at) for fr in frames], source=None
    )


def whole_recording_offset(uuid: str) -> int:
    return selectors.clock_offset_recomputed(Conversation.objects.get(uuid=uuid).pk)


@pytest.mark.parametrize("batches_before", [0, 1])
async def test_each_update_carries_the_clock_offset_of_the_whole_recording_so_far(
    staff_user, batches_before
):
    skew = 4 * 60_000  # server clock minus browser clock
    uuid = f.new_uuid()
    first = f.rrweb_events(start=f.T0, count=3)
    frames = [f.new_conversation(uuid)]
    if batches_before:
        frames.append(f.rrweb_frame(uuid, 0, first, kind="init"))
    # Received 3 s after its last event: an upper bound of the offset, tightened below.
    await database_sync_to_async(apply_received)(first[-1]["timestamp"] + skew + 3_000, *frames)
    comm = communicator(uuid, staff_user)
    assert (await comm.connect())[0]
    offsets = [(await comm.receive_json_from(timeout=5))["clock_offset_ms"]]
    for index, delay in ((1, 400), (2, 2_000)):  # the second sample is no tighter
        events = f.incremental_events(start=f.T0 + 5_000 * index, count=3)
        await database_sync_to_async(apply_received)(
            events[-1]["timestamp"] + skew + delay,
            f.rrweb_frame(uuid, index, events),
            f.message(uuid, f"Message {index}", epoch=f.T0 + 5_000 * index + skew),
        )
        update = await comm.receive_json_from(timeout=5)
        offset = update["clock_offset_ms"]
        assert offset == await database_sync_to_async(whole_recording_offset)(uuid)
        (message,) = [i for i in update["items"] if i["kind"] == "message"]
        assert message["epoch"] == message["server_ms"] - offset
        offsets.append(offset)
    # Without a batch, the catch-up had no sample: its 0 bounds nothing and must not stick.
    assert offsets == [skew + 3_000 if batches_before else 0, skew + 400, skew + 400]
    await comm.disconnect()


async def test_updates_that_come_while_a_read_is_under_way_are_read_and_sent_together(
    staff_user, monkeypatch
):
    uuid = f.new_uuid()
    await database_sync_to_async(apply)(f.new_conversation(uuid))
    comm = await watching(uuid, staff_user)

    def store(body: str) -> list:
        item = ingest.item_from_text(f.dumps(f.message(uuid, body)))
        return ingest.items_store([item], source=None)[1]  # committed, not yet announced

    announcements = [await database_sync_to_async(store)(b) for b in ("1st", "2nd", "3rd")]
    reads: list[list[int]] = []
    reading, go_on = threading.Event(), threading.Event()
    live_rows = selectors.live_rows

    def slow_first_read(**names):
        reads.append(names["message_ids"])
        if len(reads) == 1:
            reading.set()
            go_on.wait(10)
        return live_rows(**names)

    monkeypatch.setattr(selectors, "live_rows", slow_first_read)
    await live_notify_async(announcements[0])
    await asyncio.to_thread(reading.wait, 10)
    await live_notify_async(announcements[1])
    await live_notify_async(announcements[2])
    await asyncio.sleep(0.2)  # both updates reach the socket while the first read waits
    go_on.set()
    bodies = []
    for _ in range(2):
        update = await comm.receive_json_from(timeout=5)
        bodies.append([i["body"] for i in update["items"] if i["kind"] == "message"])
    assert bodies == [["1st"], ["2nd", "3rd"]]
    assert [len(ids) for ids in reads] == [1, 2]
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_an_update_reaches_the_watcher_while_djangos_synchronous_thread_is_busy(
    staff_user,
):
    """A slow page or export on Django's one synchronous thread must not hold up live views."""
    from asgiref.sync import sync_to_async

    uuid = f.new_uuid()
    await database_sync_to_async(apply)(f.new_conversation(uuid))
    comm = await watching(uuid, staff_user)
    store = ingest.item_from_text(f.dumps(f.message(uuid, "still there?")))
    announced = (await database_sync_to_async(ingest.items_store)([store], source=None))[1]

    busy = asyncio.ensure_future(sync_to_async(threading.Event().wait)(3))
    await asyncio.sleep(0.1)
    await live_notify_async(announced)
    update = await comm.receive_json_from(timeout=2)
    assert [i["body"] for i in update["items"] if i["kind"] == "message"] == ["still there?"]
    assert not busy.done()
    await busy
    await comm.disconnect()


async def test_a_notes_only_watcher_gets_notes_and_tags_but_no_recording(exporter_user):
    from conversations import annotations
    from conversations.live import live_annotations_notify

    uuid = f.new_uuid()
    await database_sync_to_async(apply)(f.new_conversation(uuid))
    conversation = await database_sync_to_async(Conversation.objects.get)(uuid=uuid)
    first = await database_sync_to_async(annotations.note_create)(
        conversation=conversation, author=exporter_user, offset_ms=1_000, text="Before"
    )
    comm = communicator(uuid, exporter_user, "?notes=1")
    assert (await comm.connect())[0]
    caught_up = await comm.receive_json_from(timeout=5)
    assert "batches" not in caught_up and "items" not in caught_up
    assert [(n["text"], n["can_delete"]) for n in caught_up["notes_all"]] == [("Before", True)]
    assert caught_up["tags"] == []

    # A batch and a message are stored and announced: not for this page.
    store = [
        ingest.item_from_text(
            f.dumps(f.rrweb_frame(uuid, 0, f.rrweb_events(count=3), kind="init"))
        ),
        ingest.item_from_text(f.dumps(f.message(uuid, "not for notes"))),
    ]
    announced = (await database_sync_to_async(ingest.items_store)(store, source=None))[1]
    await live_notify_async(announced)
    assert await comm.receive_nothing(timeout=0.5)

    def write() -> int:
        note = annotations.note_create(
            conversation=conversation, author=exporter_user, offset_ms=2_000, text="After"
        )
        live_annotations_notify(uuid, note_id=note.pk)
        live_annotations_notify(uuid, deleted_note_id=first.pk)
        return note.pk

    later = await database_sync_to_async(write)()
    update = await comm.receive_json_from(timeout=5)
    assert [(n["id"], n["text"]) for n in update["notes"]] == [(later, "After")]
    assert (await comm.receive_json_from(timeout=5)) == {"notes_deleted": [first.pk]}
    await comm.disconnect()


async def read_on_a_thread(function, *args):
    """What a worker hands live_notify_async: run the read on a thread with a connection."""
    return await database_sync_to_async(function)(*args)


def broken_read(**names):
    raise AssertionError("the page read rows the update carried")


async def test_rows_read_once_by_the_worker_reach_every_page_watching_without_a_read_of_their_own(
    staff_user, monkeypatch
):
    uuid = f.new_uuid()
    await database_sync_to_async(apply)(f.new_conversation(uuid))
    pages = [await watching(uuid, staff_user) for _ in range(3)]
    store = [
        ingest.item_from_text(
            f.dumps(f.rrweb_frame(uuid, 0, f.rrweb_events(count=3), kind="init"))
        ),
        ingest.item_from_text(f.dumps(f.message(uuid, "Is this in stock?"))),
    ]
    announced = (await database_sync_to_async(ingest.items_store)(store, source=None))[1]
    ids = {
        kind: [n["id"] for _, n in announced if n["kind"] == kind] for kind in ("rrweb", "message")
    }
    expected = await database_sync_to_async(selectors.live_rows)(
        conversation_uuid=uuid, rrweb_ids=ids["rrweb"], message_ids=ids["message"], event_ids=[]
    )
    reads = []

    async def counted(function, *args):
        reads.append(function)
        return await read_on_a_thread(function, *args)

    monkeypatch.setattr(selectors, "live_rows", broken_read)  # what a page's own read calls
    await live_notify_async(announced, read=counted)
    for page in pages:
        update = await page.receive_json_from(timeout=5)
        assert update == expected
        assert [b["events"][0]["type"] for b in update["batches"]] == [4]
        assert [i["body"] for i in update["items"] if i["kind"] == "message"] == [
            "Is this in stock?"
        ]
        await page.disconnect()
    assert len(reads) == 1  # once for the three pages


async def test_an_update_too_large_to_carry_is_read_by_the_page_and_kept_in_order(
    staff_user, settings, monkeypatch
):
    """A large batch is only named; a message after it is carried. The page shows the batch
    first, even while its read is slow and the message is already there to pass on."""
    uuid = f.new_uuid()
    await database_sync_to_async(apply)(f.new_conversation(uuid))
    page = await watching(uuid, staff_user)
    settings.REPLAY_LIVE_PUSH_MAX_BYTES = 4_000

    def store(frame: dict) -> list:
        return ingest.items_store([ingest.item_from_text(f.dumps(frame))], source=None)[1]

    big = f.rrweb_frame(uuid, 0, f.rrweb_events(count=60), kind="init")
    announced_big = await database_sync_to_async(store)(big)
    announced_small = await database_sync_to_async(store)(f.message(uuid, "Hello?"))
    reading, go_on = threading.Event(), threading.Event()
    live_rows = selectors.live_rows

    def slow_read(**names):
        reading.set()
        go_on.wait(10)
        return live_rows(**names)

    monkeypatch.setattr(selectors, "live_rows", slow_read)
    await live_notify_async(announced_big, read=read_on_a_thread)
    await asyncio.to_thread(reading.wait, 10)
    await live_notify_async(announced_small, read=read_on_a_thread)
    assert await page.receive_nothing(timeout=0.3)  # the message waits for the batch
    go_on.set()
    first = await page.receive_json_from(timeout=5)
    second = await page.receive_json_from(timeout=5)
    assert [b["meta"][0] for b in first["batches"]] == [0] and first["items"] == []
    assert second["batches"] == [] and [i["body"] for i in second["items"]] == ["Hello?"]
    await page.disconnect()


async def test_nothing_is_read_or_sent_for_a_conversation_nobody_watches(staff_user):
    watched, alone = f.new_uuid(), f.new_uuid()
    await database_sync_to_async(apply)(f.new_conversation(watched), f.new_conversation(alone))
    page = await watching(watched, staff_user)
    store = [
        ingest.item_from_text(f.dumps(f.message(uuid, f"Hi from {uuid}")))
        for uuid in (watched, alone)
    ]
    announced = (await database_sync_to_async(ingest.items_store)(store, source=None))[1]
    asked = []

    async def recorded(function, *args):
        asked.append(sorted(args[0]))
        return await read_on_a_thread(function, *args)

    await live_notify_async(announced, read=recorded)
    update = await page.receive_json_from(timeout=5)
    assert [i["body"] for i in update["items"]] == [f"Hi from {watched}"]
    assert asked == [[watched]]
    await page.disconnect()
    asked.clear()
    await live_notify_async(announced, read=recorded)  # nobody watches either now
    assert asked == []


def test_rows_are_only_shown_with_the_conversation_they_belong_to():
    mine, other = f.new_uuid(), f.new_uuid()
    apply(
        f.new_conversation(mine),
        f.new_conversation(other),
        f.rrweb_frame(other, 0, f.rrweb_events(count=3), kind="init"),
        f.message(other, "private"),
    )
    conversation = Conversation.objects.get(uuid=other)
    batch_ids = list(conversation.rrweb_batches.values_list("pk", flat=True))
    message_ids = list(conversation.messages.values_list("pk", flat=True))
    event_ids = list(conversation.events.values_list("pk", flat=True))
    asked = {"rrweb": batch_ids, "message": message_ids, "event": event_ids}
    rows = selectors.live_rows_many({mine: asked, other: {"rrweb": [], "message": message_ids}})
    assert rows[mine]["batches"] == [] and rows[mine]["items"] == []
    assert [i["body"] for i in rows[other]["items"]] == ["private"]
    assert selectors.live_rows_many({f.new_uuid(): asked}) == {}


async def test_a_carried_update_holds_what_was_stored_masked_card_numbers_and_exact_numbers(
    staff_user, monkeypatch
):
    uuid = f.new_uuid()
    await database_sync_to_async(apply)(f.new_conversation(uuid))
    page = await watching(uuid, staff_user)
    typed = {
        "type": 3,
        "data": {"source": 5, "text": "4111 1111 1111 1111", "isChecked": False, "id": 7},
        "timestamp": f.T0 + 900,
    }
    huge = {
        "type": 5,
        "data": {"tag": "order", "payload": {"id": 2**70 + 1}},
        "timestamp": f.T0 + 950,
    }
    events = [*f.rrweb_events(count=3), typed, huge]
    store = [ingest.item_from_text(f.dumps(f.rrweb_frame(uuid, 0, events, kind="init")))]
    announced = (await database_sync_to_async(ingest.items_store)(store, source=None))[1]
    (batch_id,) = [n["id"] for _, n in announced if n["kind"] == "rrweb"]
    stored = await database_sync_to_async(selectors.live_rows)(
        conversation_uuid=uuid, rrweb_ids=[batch_id], message_ids=[], event_ids=[]
    )
    monkeypatch.setattr(selectors, "live_rows", broken_read)
    await live_notify_async(announced, read=read_on_a_thread)
    text = await page.receive_from(timeout=5)
    assert "4111" not in text
    received = json.loads(text)
    assert received == stored
    (batch,) = received["batches"]
    assert batch["events"][-1]["data"]["payload"]["id"] == 2**70 + 1
    assert batch["events"][-2]["data"]["text"] != typed["data"]["text"]
    await page.disconnect()
