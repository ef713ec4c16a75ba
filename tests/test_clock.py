"""Aligning the customer's browser clock with the server's."""

from datetime import UTC, datetime, timedelta

import pytest

from conversations import clock, ingest, selectors
from conversations.models import Conversation
from tests import factories as f


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_offset_is_the_smallest_receive_delay_so_late_batches_do_not_drag_it():
    skew = 5 * 60_000
    samples = [
        (at(1_000 + skew + 900), 1_000),
        (at(2_000 + skew + 80), 2_000),
        (at(3_000 + skew + 4_000), 3_000),
    ]
    assert clock.clock_offset_ms(samples) == skew + 80


def test_without_batches_the_clocks_are_taken_to_agree():
    assert clock.clock_offset_ms([]) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("skew_minutes", [-7, 0, 4])
def test_a_message_lands_on_the_recording_where_it_was_sent_despite_a_skewed_browser(
    skew_minutes,
):
    skew = skew_minutes * 60_000  # server clock minus browser clock
    uuid = f.new_uuid()

    def apply(frame: dict, received_ms: int) -> None:
        item = ingest.item_from_text(f.dumps(frame), received_at=at(received_ms))
        ingest.items_apply([item], source=None)

    apply(f.new_conversation(uuid), f.T0 + skew)
    events = f.rrweb_events(start=f.T0, count=50)
    apply(f.rrweb_frame(uuid, 0, events, kind="init"), events[-1]["timestamp"] + skew + 120)
    later = f.incremental_events(start=f.T0 + 10_000, count=20)
    apply(f.rrweb_frame(uuid, 1, later), later[-1]["timestamp"] + skew + 2_500)
    # Sent 8 s into the visit, on the server's clock.
    apply(f.message(uuid, "Hi!", epoch=f.T0 + 8_000 + skew), f.T0 + 8_000 + skew)

    conversation = Conversation.objects.get(uuid=uuid)
    offset = selectors.clock_offset(conversation)
    assert offset == selectors.clock_offset_recomputed(conversation.pk)
    (item,) = [
        i
        for i in selectors.transcript_items(conversation, offset_ms=offset)
        if i["kind"] == "message"
    ]
    assert abs(item["epoch"] - (f.T0 + 8_000)) <= 150
    assert abs(offset - skew) < timedelta(seconds=1) / timedelta(milliseconds=1)


@pytest.mark.django_db
@pytest.mark.parametrize("in_order", [True, False], ids=["appended", "arriving-late"])
def test_the_conversation_keeps_the_tightest_clock_sample_of_its_batches(in_order):
    # Appended batches take the bulk path; a batch below what is stored, the per-frame one.
    skew, uuid = 90_000, f.new_uuid()
    first = f.rrweb_events(start=f.T0, count=5)
    later = f.incremental_events(start=f.T0 + 5_000, count=5)
    frames = [
        (f.rrweb_frame(uuid, 0, first, kind="init"), first[-1]["timestamp"] + skew + 300),
        (f.rrweb_frame(uuid, 1, later), later[-1]["timestamp"] + skew + 2_000),
    ]
    for frame, received_ms in frames if in_order else frames[::-1]:
        item = ingest.item_from_text(f.dumps(frame), received_at=at(received_ms))
        ingest.items_apply([item], source=None)

    conversation = Conversation.objects.get(uuid=uuid)
    assert conversation.clock_offset_ms == skew + 300
    assert selectors.clock_offset_recomputed(conversation.pk) == skew + 300
