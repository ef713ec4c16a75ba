"""Packing finished page loads: smaller, and read back exactly as before."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from conversations import ingest
from conversations.models import Conversation, RecordingPack, RejectedFrame, RRWebBatch
from conversations.packing import packable_segments, recordings_pack
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


def test_a_finished_page_load_is_packed_smaller_and_reads_back_the_same(staff_client):
    uuid = f.new_uuid()
    first, second = two_page_loads(uuid)
    before = recording(staff_client, uuid)
    stored_before = sum(RRWebBatch.objects.values_list("stored_size", flat=True))

    assert recordings_pack() == 1  # the second page load is still going on
    pack = RecordingPack.objects.get()
    assert (pack.segment, pack.batch_count) == (1, 5)
    assert pack.stored_size < stored_before
    assert recording(staff_client, uuid) == before
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


def test_a_closed_conversation_is_packed_whole():
    uuid = f.new_uuid()
    two_page_loads(uuid)
    Conversation.objects.filter(uuid=uuid).update(closed=True)
    call_command("pack_recordings")
    assert sorted(RecordingPack.objects.values_list("segment", flat=True)) == [1]
    # The second page load has a single batch: nothing to gain from packing it alone.
    assert RRWebBatch.objects.filter(pack__isnull=True).count() == 1


def test_resending_packed_batches_changes_nothing_and_a_different_one_is_a_conflict(
    staff_client,
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
    assert recording(staff_client, uuid)["events"] == first + second


def test_batches_arriving_after_packing_still_read_back_in_order(staff_client):
    uuid = f.new_uuid()
    first, second = two_page_loads(uuid)
    recordings_pack()
    later = f.incremental_events(start=f.T0 + 61_000, count=4)
    apply(f.rrweb_frame(uuid, 6, later))
    assert recording(staff_client, uuid)["events"] == first + second + later


@override_settings(REPLAY_PACK_IDLE=0)
def test_packing_a_conversation_twice_packs_nothing_more():
    uuid = f.new_uuid()
    two_page_loads(uuid)
    assert recordings_pack() == 1  # only the first page load has several batches
    assert recordings_pack() == 0
