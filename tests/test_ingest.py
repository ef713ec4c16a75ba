"""The ingest services: ordering, idempotency, conflicts, parts, bounds, rejections."""

import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from conversations import ingest
from conversations.models import (
    Conversation,
    Message,
    Participant,
    PendingPart,
    QueueStatus,
    RejectedFrame,
    RRWebBatch,
    TimelineEvent,
)
from conversations.storage import row_events_json
from tests import factories as f

pytestmark = pytest.mark.django_db


def apply(*frames: dict | str, source=None) -> list[ingest.Outcome]:
    items = [ingest.item_from_text(fr if isinstance(fr, str) else f.dumps(fr)) for fr in frames]
    return ingest.items_apply(items, source=source)


def stored_events(conversation: Conversation) -> list:
    events = []
    for batch in conversation.rrweb_batches.order_by("event_index"):
        events.extend(json.loads(row_events_json(batch)))
    return events


def test_message_before_new_conversation_creates_then_completes_the_conversation():
    uuid = f.new_uuid()
    apply(f.message(uuid, "Where is my order?"))
    conversation = Conversation.objects.get(uuid=uuid)
    assert conversation.merchant_id == ""
    assert conversation.message_total == 1

    apply(f.new_conversation(uuid))
    conversation.refresh_from_db()
    assert conversation.merchant_id == "DEMO"
    assert conversation.medium == "websocket"
    assert conversation.participants.get().name == "Ada Shopper"
    assert conversation.messages.get().body == "Where is my order?"


def test_rrweb_batch_before_new_conversation_is_kept():
    uuid = f.new_uuid()
    events = f.rrweb_events()
    apply(f.rrweb_frame(uuid, 0, events, kind="init"), f.new_conversation(uuid))
    conversation = Conversation.objects.get(uuid=uuid)
    assert stored_events(conversation) == events
    assert conversation.rrweb_batch_total == 1
    assert conversation.recording_start_ms == events[0]["timestamp"]
    assert conversation.recording_end_ms == events[-1]["timestamp"]


def test_older_summary_never_overwrites_a_newer_one():
    uuid = f.new_uuid()
    newer = f.summary(
        uuid,
        message_count=3,
        last_message_dts="2026-11-25T10:05:00Z",
        last_conversation_message_body="Thanks, bye",
    )
    older = f.summary(
        uuid,
        message_count=1,
        last_message_dts="2026-11-25T10:01:00Z",
        last_conversation_message_body="Hi",
    )
    apply(
        f.event("new message", uuid, event_new_message=newer),
        f.event("new message", uuid, event_new_message=older),
    )
    conversation = Conversation.objects.get(uuid=uuid)
    assert conversation.last_message_body == "Thanks, bye"
    assert conversation.summary_message_count == 3
    # Both still appear on the timeline: the frames were stored, the older just didn't win.
    assert conversation.events.filter(event_type="new message").count() == 2


def test_a_group_over_several_conversations_adds_up_each_ones_counters_and_spans():
    """Counters and spans of many conversations are written together; none takes another's."""
    from conversations.clock import epoch_ms

    a, b, c = f.new_uuid(), f.new_uuid(), f.new_uuid()
    at = timezone.now()

    def group(*frames: dict) -> None:
        items = [ingest.item_from_text(f.dumps(fr), received_at=at) for fr in frames]
        ingest.items_apply(items, source=None)

    page = "https://shop.example/"
    group(
        f.new_conversation(a),
        f.new_conversation(b),
        f.new_conversation(c),
        f.rrweb_frame(a, 1, f.rrweb_events(start=f.T0 + 10_000, href=page + "two")),
        f.message(a, "First"),
        f.rrweb_frame(b, 0, f.rrweb_events(start=f.T0, count=2, href=page + "b")),
        f.message(c, "Only chat"),
    )
    group(
        # An earlier batch of a: its page becomes the first, its start the recording's.
        f.rrweb_frame(a, 0, f.rrweb_events(start=f.T0 - 5_000, href=page + "one")),
        # A later batch of b: its end widens b's span, its page is not b's first.
        f.rrweb_frame(b, 1, f.rrweb_events(start=f.T0 + 60_000, count=1, href=page + "b2")),
        f.message(c, "More chat"),
        f.message(b, "Hello"),
    )
    got = {
        conversation.uuid: conversation
        for conversation in Conversation.objects.filter(uuid__in=[a, b, c])
    }
    a_row, b_row, c_row = got[a], got[b], got[c]
    assert (a_row.rrweb_batch_total, a_row.rrweb_event_total, a_row.message_total) == (2, 14, 1)
    assert (b_row.rrweb_batch_total, b_row.rrweb_event_total, b_row.message_total) == (2, 7, 1)
    assert (c_row.rrweb_batch_total, c_row.rrweb_event_total, c_row.message_total) == (0, 0, 2)
    assert (a_row.recording_start_ms, a_row.recording_end_ms) == (f.T0 - 5_000, f.T0 + 10_500)
    assert (b_row.recording_start_ms, b_row.recording_end_ms) == (f.T0, f.T0 + 60_100)
    assert (c_row.recording_start_ms, c_row.recording_end_ms) == (None, None)
    assert (a_row.first_href, a_row.first_href_index) == (page + "one", 0)
    assert (b_row.first_href, b_row.first_href_index) == (page + "b", 0)
    assert (c_row.first_href, c_row.first_href_index) == ("", None)
    # The clock offset is the smallest sample: the latest event against the same arrival.
    assert a_row.clock_offset_ms == epoch_ms(at) - (f.T0 + 10_500)
    assert b_row.clock_offset_ms == epoch_ms(at) - (f.T0 + 60_100)
    assert c_row.clock_offset_ms is None


def test_conversation_closed_sets_closed_and_time():
    uuid = f.new_uuid()
    apply(
        f.new_conversation(uuid),
        f.event(
            "conversation closed",
            uuid,
            event_conversation_closed=f.summary(uuid, closed=True, message_count=2),
        ),
    )
    conversation = Conversation.objects.get(uuid=uuid)
    assert conversation.closed is True
    assert conversation.closed_dts is not None


def test_resent_message_changes_nothing():
    uuid = f.new_uuid()
    frame = f.message(uuid, "Is it blue?")
    first, again = apply(frame, frame)
    assert (first.status, again.status) == (ingest.STORED, ingest.DUPLICATE)
    assert Message.objects.count() == 1
    assert Conversation.objects.get(uuid=uuid).message_total == 1
    assert RejectedFrame.objects.count() == 0


def test_different_message_under_the_same_uuid_is_a_conflict_and_keeps_the_original():
    uuid = f.new_uuid()
    message_uuid = f.new_uuid()
    apply(f.message(uuid, "original", message_uuid=message_uuid))
    (outcome,) = apply(f.message(uuid, "tampered", message_uuid=message_uuid))
    assert outcome.status == ingest.REJECTED
    assert Message.objects.get().body == "original"
    rejected = RejectedFrame.objects.get()
    assert rejected.kind == RejectedFrame.Kind.CONFLICT
    assert message_uuid in rejected.reason
    assert "tampered" in rejected.text


def test_updated_message_keeps_the_history_of_edits():
    uuid = f.new_uuid()
    message_uuid = f.new_uuid()
    original = f.message(uuid, "I want 2 kettles", message_uuid=message_uuid)
    edit = f.event(
        "updated message",
        uuid,
        event_updated_message={**original["message"], "body": "I want 3 kettles"},
    )
    apply(original, edit, edit)
    message = Message.objects.get()
    assert message.body == "I want 3 kettles"
    assert message.original["body"] == "I want 2 kettles"
    assert list(message.edits.values_list("body", flat=True)) == ["I want 3 kettles"]
    assert message.edit_count == 1


def test_edit_arriving_before_its_message_is_merged_when_the_message_comes():
    uuid = f.new_uuid()
    message_uuid = f.new_uuid()
    original = f.message(uuid, "v1", message_uuid=message_uuid)
    edit = f.event(
        "updated message", uuid, event_updated_message={**original["message"], "body": "v2"}
    )
    apply(edit)
    apply(original)
    message = Message.objects.get()
    assert message.body == "v2"
    assert message.original["body"] == "v1"
    assert Conversation.objects.get(uuid=uuid).message_total == 1


def test_resent_rrweb_batch_changes_nothing_and_different_content_is_a_conflict():
    uuid = f.new_uuid()
    events = f.rrweb_events()
    frame = f.rrweb_frame(uuid, 0, events, kind="init")
    apply(frame, frame)
    assert RRWebBatch.objects.count() == 1
    other = f.rrweb_frame(uuid, 0, f.rrweb_events(href="https://evil.example/"), kind="init")
    (outcome,) = apply(other)
    assert outcome.status == ingest.REJECTED
    assert stored_events(Conversation.objects.get(uuid=uuid)) == events
    rejected = RejectedFrame.objects.get()
    assert rejected.kind == RejectedFrame.Kind.CONFLICT
    assert "event_index 0" in rejected.reason


def test_multipart_batch_joins_parts_out_of_order_and_twice():
    uuid = f.new_uuid()
    events = f.rrweb_events(count=40)
    parts = f.rrweb_parts(uuid, 3, events, parts=4, kind="init")
    outcomes = apply(parts[2], parts[0], parts[2], parts[3])
    assert [o.status for o in outcomes] == [
        ingest.PENDING,
        ingest.PENDING,
        ingest.DUPLICATE,
        ingest.PENDING,
    ]
    assert not RRWebBatch.objects.exists()
    (last,) = apply(parts[1])
    assert last.status == ingest.STORED
    assert stored_events(Conversation.objects.get(uuid=uuid)) == events
    assert not PendingPart.objects.exists()
    # A part re-sent after the batch is complete changes nothing.
    (again,) = apply(parts[0])
    assert again.status == ingest.DUPLICATE
    assert RejectedFrame.objects.count() == 0


def test_multipart_batch_joined_across_groups_as_from_two_connections(source):
    uuid = f.new_uuid()
    events = f.rrweb_events(count=30)
    parts = f.rrweb_parts(uuid, 0, events, parts=3, kind="init")
    apply(parts[0], parts[1])
    apply(parts[2], source=source)
    batch = RRWebBatch.objects.get()
    assert batch.source == source
    assert stored_events(batch.conversation) == events


def test_part_with_a_total_checksum_that_the_joined_text_does_not_match_is_rejected():
    uuid = f.new_uuid()
    good = f.rrweb_parts(uuid, 0, f.rrweb_events(count=20), parts=2, kind="init")
    other = f.rrweb_events(count=20)
    other[-1]["data"]["positions"][0]["x"] = 999
    bad = f.rrweb_parts(uuid, 0, other, parts=2, kind="init")
    # Same total checksum claimed, but part 2 comes from other content: each part is
    # self-consistent, only the joined text shows the lie.
    forged = json.loads(f.dumps(bad[1]))
    forged["event_rrweb"]["data_total_sha256"] = good[0]["event_rrweb"]["data_total_sha256"]
    outcomes = apply(good[0], forged)
    assert outcomes[-1].status == ingest.REJECTED
    assert not RRWebBatch.objects.exists()
    assert not PendingPart.objects.exists()
    reasons = set(RejectedFrame.objects.values_list("reason", flat=True))
    assert len(reasons) == 1 and "data_total_sha256" in reasons.pop()
    assert RejectedFrame.objects.count() == 2


def test_part_disagreeing_with_its_siblings_is_a_conflict():
    uuid = f.new_uuid()
    events = f.rrweb_events(count=20)
    three = f.rrweb_parts(uuid, 0, events, parts=3, kind="init")
    two = f.rrweb_parts(uuid, 0, events, parts=2, kind="init")
    outcomes = apply(three[0], two[1])
    assert outcomes[1].status == ingest.REJECTED
    assert "data_total_parts 2 vs 3" in outcomes[1].reason
    assert PendingPart.objects.count() == 1


@override_settings(REPLAY_PART_TTL=60)
def test_incomplete_batch_expires_into_rejected_frames():
    uuid = f.new_uuid()
    parts = f.rrweb_parts(uuid, 0, f.rrweb_events(count=20), parts=3, kind="init")
    apply(parts[0], parts[1])
    assert ingest.pending_expire(now=timezone.now() + timedelta(seconds=30), force=True) == 0
    assert ingest.pending_expire(now=timezone.now() + timedelta(seconds=61), force=True) == 1
    assert not PendingPart.objects.exists()
    rejected = list(RejectedFrame.objects.all())
    assert len(rejected) == 2
    assert {r.kind for r in rejected} == {RejectedFrame.Kind.EXPIRED}
    assert {json.loads(r.text)["event_rrweb"]["data_part"] for r in rejected} == {1, 2}


@override_settings(REPLAY_PENDING_MAX_BATCHES_PER_CONVERSATION=2)
def test_too_many_incomplete_batches_evicts_the_oldest_into_rejected_frames():
    uuid = f.new_uuid()
    for index in range(3):
        apply(f.rrweb_parts(uuid, index, f.rrweb_events(count=10), parts=2, kind="init")[0])
    assert set(PendingPart.objects.values_list("event_index", flat=True)) == {1, 2}
    rejected = RejectedFrame.objects.get()
    assert rejected.kind == RejectedFrame.Kind.EVICTED
    assert json.loads(rejected.text)["event_rrweb"]["event_index"] == 0


@override_settings(REPLAY_PENDING_MAX_BYTES=1500)
def test_a_part_over_the_global_pending_limit_is_refused_and_nothing_else_evicted():
    a, b = f.new_uuid(), f.new_uuid()
    apply(f.rrweb_parts(a, 0, f.rrweb_events(count=20), parts=2, kind="init")[0])
    (outcome,) = apply(f.rrweb_parts(b, 0, f.rrweb_events(count=20), parts=2, kind="init")[0])
    assert outcome.status == ingest.REJECTED
    assert 750 < PendingPart.objects.get().size <= 1500
    assert list(PendingPart.objects.values_list("conversation__uuid", flat=True)) == [a]
    refused = RejectedFrame.objects.get()
    assert (refused.conversation_uuid, refused.kind) == (b, RejectedFrame.Kind.QUOTA)
    assert "REPLAY_PENDING_MAX_BYTES" in refused.reason


@override_settings(REPLAY_PENDING_MAX_BYTES_PER_SOURCE=1500)
def test_one_source_over_its_pending_bytes_never_evicts_another_sources_parts(source):
    from conversations.keys import ingest_key_create

    other, _ = ingest_key_create(name="other.example")
    mine, theirs, more = f.new_uuid(), f.new_uuid(), f.new_uuid()
    first = f.rrweb_parts(theirs, 0, f.rrweb_events(count=20), parts=2, kind="init")
    assert apply(first[0], source=other)[0].status == ingest.PENDING
    part = f.rrweb_parts(mine, 0, f.rrweb_events(count=20), parts=2, kind="init")[0]
    assert apply(part, source=source)[0].status == ingest.PENDING
    part = f.rrweb_parts(more, 0, f.rrweb_events(count=20), parts=2, kind="init")[0]
    (refused,) = apply(part, source=source)
    assert refused.status == ingest.REJECTED
    assert "REPLAY_PENDING_MAX_BYTES_PER_SOURCE" in refused.reason
    assert set(PendingPart.objects.values_list("conversation__uuid", flat=True)) == {mine, theirs}
    # The other source's batch still completes.
    (joined,) = apply(first[1], source=other)
    assert joined.status == ingest.STORED


@pytest.mark.parametrize(
    ("text", "kind", "reason_part"),
    [
        ("{not json", RejectedFrame.Kind.INVALID, "invalid JSON"),
        ("[1, 2]", RejectedFrame.Kind.INVALID, "JSON object"),
        ('{"type": "shout"}', RejectedFrame.Kind.INVALID, "type"),
        ('{"type": "message", "conversation_uuid": "c1"}', RejectedFrame.Kind.INVALID, "message"),
    ],
)
def test_bad_frames_are_kept_with_their_reason(text, kind, reason_part):
    (outcome,) = apply(text)
    assert outcome.status == ingest.REJECTED
    rejected = RejectedFrame.objects.get()
    assert rejected.kind == kind
    assert reason_part in rejected.reason
    assert rejected.text == text


def test_rrweb_data_that_is_not_rrweb_is_rejected_and_good_frames_around_it_are_stored():
    uuid = f.new_uuid()
    bad = f.rrweb_frame(uuid, 1, "this is not rrweb", kind="events")
    outcomes = apply(f.message(uuid, "before"), bad, f.message(uuid, "after"))
    assert [o.status for o in outcomes] == [ingest.STORED, ingest.REJECTED, ingest.STORED]
    assert Message.objects.count() == 2
    assert RejectedFrame.objects.get().conversation_uuid == uuid


@override_settings(REPLAY_MAX_FRAME_BYTES=100, REPLAY_REJECTED_KEEP_BYTES=50)
def test_oversized_frame_is_rejected_and_its_beginning_kept():
    uuid = f.new_uuid()
    text = f.dumps(f.message(uuid, "x" * 500))
    (outcome,) = apply(text)
    assert outcome.status == ingest.REJECTED
    rejected = RejectedFrame.objects.get()
    assert rejected.kind == RejectedFrame.Kind.TOO_LARGE
    assert rejected.truncated and rejected.size == len(text)
    assert text.startswith(rejected.text) and len(rejected.text) == 50


def test_binary_frame_is_rejected_and_kept():
    item = ingest.item_from_binary(b"\x00\x01binary")
    (outcome,) = ingest.items_apply([item], source=None)
    assert outcome.status == ingest.REJECTED
    rejected = RejectedFrame.objects.get()
    assert rejected.kind == RejectedFrame.Kind.BINARY
    assert bytes(rejected.binary) == b"\x00\x01binary"


def test_timeline_keeps_every_later_event_type_and_unknown_ones():
    uuid = f.new_uuid()
    who = f.participant("Bob Agent", arn="arn:agent:bob")
    frames = [
        f.event("webchat start conversation", uuid),
        f.event(
            "typing",
            uuid,
            event_typing={"author_conversation_participant_name": "Ada", "value": "hel"},
        ),
        f.event("queue position", uuid, event_queue_position={"available": True, "position": 2}),
        f.event(
            "participant join",
            uuid,
            event_participant_join=f.summary(uuid),
            event_participant_join_participant=who,
        ),
        f.event(
            "participant left",
            uuid,
            event_participant_left_participant={**who, "left_dts": "2026-11-25T10:09:00Z"},
        ),
        f.event(
            "read message",
            uuid,
            event_read_message={
                "conversation_message_uuid": "m1",
                "message_dts": "2026-11-25T10:02:00Z",
            },
        ),
        f.event(
            "add coupon", uuid, event_add_coupon={"agent_name": "Bob", "coupon_code": "SAVE10"}
        ),
        f.event(
            "add item", uuid, event_add_item={"agent_name": "Bob", "items": [{"item_id": "KETTLE"}]}
        ),
        f.event(
            "webchat context", uuid, event_webchat_context={"url": "https://shop.example/cart"}
        ),
        f.event(
            "engage customer", uuid, event_engage_customer={"conversation_participant_name": "Ada"}
        ),
        f.event(
            "queue new member",
            uuid,
            event_queue_new_member={"conversation_participant_name": "Ada"},
        ),
        f.event("brand new thing", uuid, event_brand_new_thing={"x": 1}),
    ]
    outcomes = apply(*frames)
    assert all(o.status == ingest.STORED for o in outcomes), [o.reason for o in outcomes]
    events = TimelineEvent.objects.filter(conversation__uuid=uuid)
    assert events.count() == len(frames)
    unknown = events.get(event_type="brand new thing")
    assert unknown.known is False and unknown.envelope["event_brand_new_thing"] == {"x": 1}
    assert events.get(event_type="add coupon").summary == "Bob added coupon SAVE10"
    bob = Participant.objects.get(key="arn:agent:bob")
    assert bob.left_dts is not None


def test_check_queue_position_uses_the_latest_queue_status():
    uuid = f.new_uuid()
    status = {
        "queue_name": "support",
        "agent_available_count": 1,
        "customer_waiting_count": 2,
        "queue_entries": [
            {"conversation_participant_arn": "arn:other", "join_dts": "2026-11-25T09:59:00Z"},
            {
                "conversation_participant_arn": "arn:participant:ada-shopper",
                "join_dts": "2026-11-25T10:00:00Z",
            },
        ],
    }
    outcomes = apply(
        f.new_conversation(uuid),
        f.event("queue status update", None, event_queue_status_update=status),
        {"type": "check queue position", "conversation_uuid": uuid},
    )
    assert QueueStatus.objects.count() == 1
    assert outcomes[-1].reply == {
        "type": "event",
        "event_type": "queue position",
        "conversation_uuid": uuid,
        "event_queue_position": {"available": True, "position": 2},
    }


def test_check_queue_position_without_a_queue_status_is_unknown():
    (outcome,) = apply({"type": "check queue position", "conversation_uuid": "nobody"})
    assert outcome.reply["event_queue_position"] == {"available": False, "position": -1}


def test_batches_are_grouped_into_segments_by_init_even_when_the_init_comes_late():
    uuid = f.new_uuid()
    first = f.rrweb_events(start=f.T0)
    second = f.rrweb_events(start=f.T0 + 60_000, href="https://shop.example/cart")
    apply(
        f.rrweb_frame(uuid, 0, first, kind="init"),
        f.rrweb_frame(uuid, 1, f.incremental_events(start=f.T0 + 1000), kind="events"),
        f.rrweb_frame(uuid, 3, f.incremental_events(start=f.T0 + 61_000), kind="events"),
    )
    apply(f.rrweb_frame(uuid, 2, second, kind="init"))
    segments = dict(RRWebBatch.objects.values_list("event_index", "segment"))
    assert segments == {0: 1, 1: 1, 2: 2, 3: 2}


def test_incremental_batches_compress_against_the_full_snapshot_and_read_back_equal():
    uuid = f.new_uuid()
    init = f.rrweb_events(count=3)
    later = f.incremental_events(start=f.T0 + 2000, count=30)
    apply(f.rrweb_frame(uuid, 0, init, kind="init"), f.rrweb_frame(uuid, 1, later))
    first, second = RRWebBatch.objects.order_by("event_index")
    assert first.base_id is None and second.base_id == first.pk
    assert stored_events(first.conversation) == init + later


def test_parts_resent_whole_in_one_group_complete_the_batch_and_clear_what_was_pending():
    uuid = f.new_uuid()
    events = f.rrweb_events(count=30)
    parts = f.rrweb_parts(uuid, 0, events, parts=2, kind="init")
    apply(parts[0])
    assert PendingPart.objects.count() == 1
    outcomes = apply(parts[0], parts[1])
    assert [o.status for o in outcomes] == [ingest.STORED, ingest.STORED]
    assert stored_events(Conversation.objects.get(uuid=uuid)) == events
    assert not PendingPart.objects.exists()
    assert not RejectedFrame.objects.exists()


def test_pending_parts_of_other_content_are_kept_aside_when_the_index_is_stored_whole():
    uuid = f.new_uuid()
    other = f.rrweb_events(count=30, href="https://other.example/")
    apply(f.rrweb_parts(uuid, 0, other, parts=2, kind="init")[0])
    events = f.rrweb_events(count=30)
    apply(*f.rrweb_parts(uuid, 0, events, parts=2, kind="init"))
    assert stored_events(Conversation.objects.get(uuid=uuid)) == events
    assert not PendingPart.objects.exists()
    rejected = RejectedFrame.objects.get()
    assert rejected.kind == RejectedFrame.Kind.CONFLICT
    assert json.loads(rejected.text)["event_rrweb"]["data_part"] == 1


def test_a_bad_batch_in_the_middle_of_a_group_is_rejected_and_the_rest_stored():
    uuid = f.new_uuid()
    outcomes = apply(
        f.rrweb_frame(uuid, 0, f.rrweb_events(), kind="init"),
        f.rrweb_frame(uuid, 1, '[{"type": 3}]'),
        f.rrweb_frame(uuid, 2, f.incremental_events(start=f.T0 + 5000)),
    )
    assert [o.status for o in outcomes] == [ingest.STORED, ingest.REJECTED, ingest.STORED]
    assert sorted(RRWebBatch.objects.values_list("event_index", flat=True)) == [0, 2]
    assert "timestamp" in RejectedFrame.objects.get().reason


def test_a_nul_character_never_fails_the_group_and_the_frame_is_kept_exactly():
    uuid = f.new_uuid()
    nul = f.message(uuid, "bad \u0000 byte")
    raw_nul = '{"type": "ping", "x": "\x00"}'  # a raw NUL is not valid JSON
    outcomes = apply(nul, raw_nul, f.message(uuid, "fine"))
    # Databases differ: SQLite stores \u0000 in JSON, PostgreSQL refuses it. Either way the
    # frame is accounted for and its neighbours are stored.
    assert outcomes[0].status in (ingest.STORED, ingest.REJECTED)
    assert outcomes[1].status == ingest.REJECTED
    assert outcomes[2].status == ingest.STORED
    assert Message.objects.filter(body="fine").exists()
    kept = RejectedFrame.objects.get(text__contains='"type": "ping"')
    assert bytes(kept.binary).decode() == raw_nul
    if outcomes[0].status == ingest.REJECTED:
        assert "database cannot store" in outcomes[0].reason


def test_a_rejected_first_frame_of_a_new_conversation_does_not_break_the_next_one():
    uuid = f.new_uuid()
    outcomes = apply(
        f.rrweb_frame(uuid, 0, '[{"type": 3}]'),  # creates the conversation, then is rejected
        f.message(uuid, "I am still here"),
    )
    assert [o.status for o in outcomes] == [ingest.REJECTED, ingest.STORED]
    conversation = Conversation.objects.get(uuid=uuid)
    assert conversation.messages.get().body == "I am still here"
    assert conversation.message_total == 1 and conversation.rrweb_batch_total == 0


def test_a_group_of_messages_stores_each_new_one_once_and_sorts_out_the_rest():
    """New messages of a group go in together; repeats, conflicts and edits keep their rules."""
    first, second = f.new_uuid(), f.new_uuid()
    known = f.message(first, "stored before")
    apply(known)
    edited = f.message(first, "v1")
    edit = f.event(
        "updated message", first, event_updated_message={**edited["message"], "body": "v2"}
    )
    twice = f.message(second, "sent twice in one group")
    conflicting = f.message(
        first, "other words", message_uuid=known["message"]["conversation_message_uuid"]
    )
    outcomes = apply(
        f.message(first, "new one"),
        known,
        conflicting,
        edit,
        edited,
        twice,
        twice,
        f.message(second, "new in another conversation"),
    )
    assert [o.status for o in outcomes] == [
        ingest.STORED,
        ingest.DUPLICATE,
        ingest.REJECTED,
        ingest.STORED,
        ingest.STORED,
        ingest.STORED,
        ingest.DUPLICATE,
        ingest.STORED,
    ]
    assert "already stored with different content" in outcomes[2].reason
    one, two = Conversation.objects.get(uuid=first), Conversation.objects.get(uuid=second)
    assert sorted(one.messages.values_list("body", flat=True)) == ["new one", "stored before", "v2"]
    assert one.messages.get(body="v2").original["body"] == "v1"
    assert sorted(two.messages.values_list("body", flat=True)) == [
        "new in another conversation",
        "sent twice in one group",
    ]
    assert (one.message_total, two.message_total) == (3, 2)


def test_a_conversation_another_process_created_meanwhile_is_used_not_doubled():
    from conversations.ingest.conversations import conversation_get_or_create
    from conversations.ingest.items import Context

    uuid = f.new_uuid()
    theirs = Conversation.objects.create(uuid=uuid, arn="arn:theirs")
    ours = conversation_get_or_create(Context(source=None), uuid=uuid)  # nothing prefetched
    assert ours.pk == theirs.pk and ours.arn == "arn:theirs"
    fresh = conversation_get_or_create(Context(source=None), uuid=f.new_uuid(), arn="arn:new")
    assert Conversation.objects.get(pk=fresh.pk).arn == "arn:new"
    assert Conversation.objects.count() == 2


def test_a_batch_another_connection_stored_meanwhile_is_a_duplicate_and_the_rest_stored(
    monkeypatch,
):
    """The bulk path's view of a recording's end can be out of date by the time it inserts.

    It reads the end, then inserts; a batch stored in between (another connection) makes
    its insert fail. Seen here by handing it an empty view: the group still stores its new
    batch and reports the other as the duplicate it is, each once.
    """
    from conversations.ingest import batches

    uuid = f.new_uuid()
    init = f.rrweb_frame(uuid, 0, f.rrweb_events(), kind="init")
    apply(init)
    monkeypatch.setattr(batches, "_recording_ends", lambda pks: ({}, {}))
    later = f.rrweb_frame(uuid, 1, f.incremental_events(start=f.T0 + 2000))
    outcomes = apply(init, later)
    assert [o.status for o in outcomes] == [ingest.DUPLICATE, ingest.STORED]
    assert list(
        RRWebBatch.objects.values_list("event_index", flat=True).order_by("event_index")
    ) == [0, 1]
    conversation = Conversation.objects.get(uuid=uuid)
    assert conversation.rrweb_batch_total == 2
    assert stored_events(conversation) == f.rrweb_events() + f.incremental_events(start=f.T0 + 2000)
