"""Packing finished page loads: smaller, and read back exactly as before."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from conversations import ingest, storage
from conversations.models import (
    Conversation,
    RecordingDictionary,
    RecordingPack,
    RejectedFrame,
    RRWebBatch,
)
from conversations.packing import dictionary_refresh, packable_segments, recordings_pack
from tests import factories as f

pytestmark = pytest.mark.django_db


def apply(*frames: dict) -> list[ingest.Outcome]:
    return ingest.items_apply(
        [ingest.item_from_text(f.dumps(frame)) for frame in frames], source=None
    )


def recording(client, uuid: str) -> dict:
    response = client.get(f"/api/conversations/{uuid}/recording/")
    return json.loads(b"".join(response.streaming_content))


def two_page_loads(uuid: str) -> tuple[list, list]:
    first = f.rrweb_events(start=f.T0, count=20)
    moves = [f.incremental_events(start=f.T0 + 3000 + 1000 * n, count=10) for n in range(4)]
    second = f.rrweb_events(start=f.T0 + 60_000, href="https://shop.example/cart", count=5)
    apply(
        f.rrweb_frame(uuid, 0, first, kind="init"),
        *[f.rrweb_frame(uuid, 1 + n, batch) for n, batch in enumerate(moves)],
        f.rrweb_frame(uuid, 5, second, kind="init"),
    )
    return first + [e for batch in moves for e in batch], second


def test_a_finished_page_load_is_packed_smaller_and_reads_back_the_same(exporter_client):
    uuid = f.new_uuid()
    first, second = two_page_loads(uuid)
    before = recording(exporter_client, uuid)
    stored_before = sum(RRWebBatch.objects.values_list("stored_size", flat=True))

    assert recordings_pack() == 1  # the second page load is still going on
    pack = RecordingPack.objects.get()
    assert (pack.segment, pack.batch_count) == (1, 5)
    assert pack.stored_size < stored_before
    assert list(RRWebBatch.objects.values_list("event_index", flat=True)) == [5]
    assert recording(exporter_client, uuid) == before
    assert before["events"] == first + second


def test_a_page_load_still_going_on_is_not_packed_until_it_is_quiet():
    uuid = f.new_uuid()
    apply(
        f.rrweb_frame(uuid, 0, f.rrweb_events(), kind="init"),
        f.rrweb_frame(uuid, 1, f.incremental_events(start=f.T0 + 2000)),
    )
    assert packable_segments() == []
    RRWebBatch.objects.update(received_at=timezone.now() - timedelta(hours=1))
    conversation = Conversation.objects.get(uuid=uuid)
    assert packable_segments() == [(conversation.pk, 1)]


def test_a_closed_conversation_is_packed_whole_a_page_load_of_one_batch_too(exporter_client):
    uuid = f.new_uuid()
    first, second = two_page_loads(uuid)
    alone = RRWebBatch.objects.get(event_index=5).stored_size
    Conversation.objects.filter(uuid=uuid).update(closed=True)
    call_command("pack_recordings")
    packs = RecordingPack.objects.order_by("segment")
    assert [(p.segment, p.batch_count) for p in packs] == [(1, 5), (2, 1)]
    assert not RRWebBatch.objects.exists()
    # Against the first page, the lone page load's full snapshot takes a fraction of its row.
    assert packs[1].base_id == packs[0].pk and packs[1].stored_size < alone / 2
    assert recording(exporter_client, uuid)["events"] == first + second


def test_a_closed_conversation_of_a_single_batch_is_packed(exporter_client):
    uuid = f.new_uuid()
    events = f.rrweb_events(count=20)
    apply(f.rrweb_frame(uuid, 0, events, kind="init"))
    Conversation.objects.filter(uuid=uuid).update(closed=True)
    assert recordings_pack() == 1
    assert RecordingPack.objects.get().batch_count == 1 and not RRWebBatch.objects.exists()
    assert recording(exporter_client, uuid)["events"] == events


def test_resending_packed_batches_changes_nothing_and_a_different_one_is_a_conflict(
    exporter_client,
):
    uuid = f.new_uuid()
    first, second = two_page_loads(uuid)
    recordings_pack()
    again = f.rrweb_frame(uuid, 1, f.incremental_events(start=f.T0 + 3000, count=10))
    (outcome,) = apply(again)
    assert outcome.status == ingest.DUPLICATE
    (conflict,) = apply(f.rrweb_frame(uuid, 2, f.incremental_events(start=f.T0, count=3)))
    assert conflict.status == ingest.REJECTED
    assert RejectedFrame.objects.get().kind == RejectedFrame.Kind.CONFLICT
    assert recording(exporter_client, uuid)["events"] == first + second


def test_batches_arriving_after_packing_still_read_back_in_order(exporter_client):
    uuid = f.new_uuid()
    first, second = two_page_loads(uuid)
    recordings_pack()
    later = f.incremental_events(start=f.T0 + 61_000, count=4)
    apply(f.rrweb_frame(uuid, 6, later))
    assert recording(exporter_client, uuid)["events"] == first + second + later


@override_settings(REPLAY_PACK_IDLE=0)
def test_packing_a_conversation_twice_packs_nothing_more():
    uuid = f.new_uuid()
    two_page_loads(uuid)
    assert recordings_pack() == 2  # both page loads, idle at once
    assert recordings_pack() == 0


@override_settings(REPLAY_PACK_IDLE=0)
def test_a_pass_out_of_time_packs_one_page_load_and_leaves_the_rest_for_the_next():
    """The worker packs between rounds on a time budget, so frames never wait long for it."""
    for _ in range(2):
        two_page_loads(f.new_uuid())
    assert recordings_pack(budget=0) == -1  # one packed, three left: say so
    assert RecordingPack.objects.count() == 1
    assert recordings_pack(budget=0) == -1
    assert recordings_pack(budget=60) == 2  # the rest, in time
    assert RecordingPack.objects.count() == 4
    assert recordings_pack(budget=0) == 0


def test_an_init_arriving_late_renumbers_the_packed_page_loads_after_it(exporter_client):
    uuid = f.new_uuid()
    first = f.rrweb_events(start=f.T0)
    third = f.rrweb_events(start=f.T0 + 120_000, href="https://shop.example/checkout")
    apply(
        f.rrweb_frame(uuid, 0, first, kind="init"),
        f.rrweb_frame(uuid, 1, f.incremental_events(start=f.T0 + 1000)),
        f.rrweb_frame(uuid, 10, third, kind="init"),
        f.rrweb_frame(uuid, 11, f.incremental_events(start=f.T0 + 121_000)),
    )
    assert recordings_pack(finished_only=False) == 2
    second = f.rrweb_events(start=f.T0 + 60_000, href="https://shop.example/cart")
    apply(f.rrweb_frame(uuid, 5, second, kind="init"))  # the page in between, late
    segments = recording(exporter_client, uuid)["segments"]
    assert [(s["segment"], s["href"]) for s in segments] == [
        (1, "https://shop.example/"),
        (2, "https://shop.example/cart"),
        (3, "https://shop.example/checkout"),
    ]


def test_an_archive_is_the_same_before_and_after_packing():
    from conversations import exports

    uuid = f.new_uuid()
    two_page_loads(uuid)
    before = exports.archive_bytes(uuid)
    recordings_pack(finished_only=False)
    assert RecordingPack.objects.count() == 2 and not RRWebBatch.objects.exists()
    assert exports.archive_bytes(uuid) == before


@pytest.mark.django_db(transaction=True)
@override_settings(REPLAY_PACK_INTERVAL=0.001, REPLAY_PACK_IDLE=0)
async def test_the_ingest_worker_packs_finished_page_loads_by_itself(source):
    import asyncio

    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from conversations.ingest.worker import Worker
    from replay.asgi import application

    stop = asyncio.Event()
    worker = asyncio.ensure_future(Worker().run(stop=stop))
    uuid = f.new_uuid()
    comm = WebsocketCommunicator(application, f"/ws/ingest/?key={source.raw_key}")
    await comm.connect()
    frames = [
        f.rrweb_frame(uuid, 0, f.rrweb_events(), kind="init"),
        f.rrweb_frame(uuid, 1, f.incremental_events(start=f.T0 + 1000)),
        f.rrweb_frame(uuid, 2, f.rrweb_events(start=f.T0 + 9000), kind="init"),
    ]
    for frame in frames:
        await comm.send_to(text_data=f.dumps(frame))
    await comm.send_to(text_data='{"type":"ping"}')
    assert json.loads(await comm.receive_from(timeout=5)) == {"type": "ping"}
    await comm.send_to(text_data='{"type":"ping"}')  # a later group starts the packing
    await comm.receive_from(timeout=5)
    count = sync_to_async(RecordingPack.objects.count)
    for _ in range(100):
        if await count():
            break
        await asyncio.sleep(0.1)
    await comm.disconnect()
    stop.set()
    await worker
    assert await count() == 2  # both page loads: with no idle time, the second is over too


# Shared dictionaries --------------------------------------------------------------------------

VISITORS = ["ada-lovelace", "grace-hopper", "alan-turing", "edsger-dijkstra"]


def closed_visit(account: str, *, start: int = f.T0) -> str:
    """A closed conversation of one page load, on a page naming its visitor."""
    uuid = f.new_uuid()
    page = f.rrweb_events(start=start, count=12, href=f"https://shop.example/account/{account}")
    apply(
        f.rrweb_frame(uuid, 0, page, kind="init"),
        f.rrweb_frame(uuid, 1, f.incremental_events(start=start + 2000, count=8)),
    )
    Conversation.objects.filter(uuid=uuid).update(closed=True)
    return uuid


@override_settings(REPLAY_PACK_DICTIONARY_SAMPLES=4)
def test_first_packs_are_compressed_against_what_earlier_conversations_share(exporter_client):
    for account in VISITORS:
        closed_visit(account)
    assert recordings_pack() == 4  # and, with four first packs, a dictionary for the next
    dictionary = RecordingDictionary.objects.get()
    text = storage.dictionary_text(dictionary.pk)
    assert b'"textContent":"Blue kettle, 39 EUR"' in text  # every visitor's page has it
    assert not any(account.encode() in text for account in VISITORS)  # one visitor's: never
    assert set(RecordingPack.objects.values_list("dictionary", flat=True)) == {None}

    uuid = closed_visit("barbara-liskov")
    expected = recording(exporter_client, uuid)
    rows = list(RRWebBatch.objects.order_by("event_index"))
    texts = [storage.row_events_json(row) for row in rows]
    alone = storage.pack_build(rows, texts, base=None)
    recordings_pack()
    pack = RecordingPack.objects.get(conversation__uuid=uuid)

    assert (pack.dictionary_id, pack.base_id) == (dictionary.pk, None)
    assert len(pack.data) < len(alone.data)
    storage.events_cache_clear()
    assert recording(exporter_client, uuid) == expected


@override_settings(REPLAY_PACK_DICTIONARY_SAMPLES=2, REPLAY_PACK_DICTIONARY_DAYS=30)
def test_a_new_dictionary_is_built_when_due_from_conversations_packed_since():
    for account in VISITORS[:2]:
        closed_visit(account)
    recordings_pack()
    first = RecordingDictionary.objects.get()
    later = timezone.now() + timedelta(days=31)
    assert dictionary_refresh(now=later) is None  # no conversation packed since it was built

    for account in VISITORS[2:]:
        closed_visit(account)
    recordings_pack()  # not due yet: these first packs take the first dictionary
    assert RecordingDictionary.objects.count() == 1
    assert RecordingPack.objects.filter(dictionary=first).count() == 2
    second = dictionary_refresh(now=later)

    assert second is not None and second.sample_count == 2
    assert storage.dictionary_newest()[0] == second.pk


@override_settings(REPLAY_PACK_DICTIONARY_SAMPLES=2, REPLAY_PACK_DICTIONARY_DAYS=0)
def test_no_dictionary_is_built_when_they_are_turned_off():
    for account in VISITORS:
        closed_visit(account)
    recordings_pack()
    assert not RecordingDictionary.objects.exists()
