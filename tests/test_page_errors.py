"""Console errors and failed requests: counted and listed as their batches are stored."""

import io
import json

import pytest

from conversations import ingest
from conversations.models import Conversation, PageError
from conversations.storage import row_events_json
from tests import factories as f

pytestmark = pytest.mark.django_db

CARD = "4111 1111 1111 1111"


def apply(*frames: dict) -> list[ingest.Outcome]:
    items = [ingest.item_from_text(f.dumps(frame)) for frame in frames]
    return ingest.items_apply(items, source=None)


def listed(uuid: str) -> list[tuple]:
    return list(
        PageError.objects.filter(conversation__uuid=uuid).values_list(
            "event_index", "kind", "level", "message", "status"
        )
    )


def test_errors_are_counted_and_listed_whether_stored_in_bulk_or_frame_by_frame():
    uuid = f.new_uuid()
    t = f.T0
    page = f.rrweb_events(start=t) + [f.console_event(t + 900, "TypeError: cart is undefined")]
    later = [f.network_event(t + 3_000, "https://shop.example/api/stock", status=503)]
    late = [
        f.console_event(t + 2_000, "slow", level="warn"),
        f.network_event(t + 2_100, "https://shop.example/api/pay", status=0, error="Failed"),
    ]
    apply(f.rrweb_frame(uuid, 0, page, kind="init"), f.rrweb_frame(uuid, 2, later))  # bulk
    apply(f.rrweb_frame(uuid, 1, late))  # below what is stored: the per-frame path

    conversation = Conversation.objects.get(uuid=uuid)
    assert (conversation.console_error_total, conversation.network_error_total) == (1, 2)
    assert listed(uuid) == [
        (0, "console", "error", "TypeError: cart is undefined", None),
        (1, "console", "warn", "slow", None),
        (1, "network", "error", "GET https://shop.example/api/pay Failed", None),
        (2, "network", "error", "GET https://shop.example/api/stock 503", 503),
    ]


def test_a_batch_sent_again_is_neither_counted_nor_listed_twice():
    uuid = f.new_uuid()
    page = f.rrweb_events() + [f.console_event(f.T0 + 900, "boom")]
    frame = f.rrweb_frame(uuid, 0, page, kind="init")
    apply(frame)
    apply(frame)
    apply(frame, frame)
    assert Conversation.objects.get(uuid=uuid).console_error_total == 1
    assert len(listed(uuid)) == 1


def test_a_conversation_without_errors_counts_none():
    uuid = f.new_uuid()
    apply(f.rrweb_frame(uuid, 0, f.rrweb_events(), kind="init"))
    conversation = Conversation.objects.get(uuid=uuid)
    assert (conversation.console_error_total, conversation.network_error_total) == (0, 0)
    assert conversation.error_total == 0
    assert listed(uuid) == []


def test_a_card_number_logged_to_the_console_is_masked_in_the_recording_and_the_list():
    uuid = f.new_uuid()
    page = f.rrweb_events() + [f.console_event(f.T0 + 900, f"Card {CARD} declined")]
    apply(f.rrweb_frame(uuid, 0, page, kind="init"))

    conversation = Conversation.objects.get(uuid=uuid)
    stored = row_events_json(conversation.rrweb_batches.get()).decode()
    assert "4111" not in stored.replace("**** **** **** 1111", "")
    assert json.loads(stored)[-1]["data"]["payload"]["payload"] == [
        '"Card **** **** **** 1111 declined"'
    ]
    assert listed(uuid)[0][3] == "Card **** **** **** 1111 declined"
    assert conversation.scrubbed_total == 1


def test_a_page_logging_in_a_loop_is_counted_in_full_but_listed_up_to_the_cap(monkeypatch):
    monkeypatch.setattr("conversations.rrweb.MAX_ERRORS_PER_BATCH", 3)
    uuid = f.new_uuid()
    page = f.rrweb_events() + [f.console_event(f.T0 + 900 + i, f"loop {i}") for i in range(10)]
    apply(f.rrweb_frame(uuid, 0, page, kind="init"))
    assert Conversation.objects.get(uuid=uuid).console_error_total == 10
    assert [row[3] for row in listed(uuid)] == ["loop 0", "loop 1", "loop 2"]


def test_a_nul_character_in_a_console_message_is_listed_as_a_replacement_character():
    uuid = f.new_uuid()  # PostgreSQL's text refuses U+0000, which a page may well log
    page = f.rrweb_events() + [f.console_event(f.T0 + 900, "bad\x00byte")]
    apply(f.rrweb_frame(uuid, 0, page, kind="init"))
    assert listed(uuid)[0][3] == "bad\ufffdbyte"


def test_recordings_stored_before_errors_were_counted_are_recounted_by_the_command():
    """As after upgrading: the counters say 0 and nothing is listed, until the command runs."""
    from django.core.management import call_command

    uuid, quiet = f.new_uuid(), f.new_uuid()
    t = f.T0
    page = f.rrweb_events(start=t) + [f.console_event(t + 900, "TypeError: cart is undefined")]
    failed = [f.network_event(t + 3_000, "https://shop.example/api/stock", status=503)]
    apply(f.rrweb_frame(uuid, 0, page, kind="init"), f.rrweb_frame(uuid, 1, failed))
    apply(f.rrweb_frame(quiet, 0, f.rrweb_events(), kind="init"))
    counted = listed(uuid)
    PageError.objects.all().delete()
    Conversation.objects.update(console_error_total=0, network_error_total=0)

    out = io.StringIO()
    call_command("recount_page_errors", stdout=out)
    call_command("recount_page_errors", stdout=out)  # again: nothing doubles

    conversation = Conversation.objects.get(uuid=uuid)
    assert (conversation.console_error_total, conversation.network_error_total) == (1, 1)
    assert listed(uuid) == counted
    assert Conversation.objects.get(uuid=quiet).error_total == 0
    assert out.getvalue().splitlines()[-1] == (
        "Recounted 2 recording(s): 1 console error(s), 1 failed request(s)."
    )


def test_recounting_a_conversation_without_a_recording_says_so():
    from django.core.management import CommandError, call_command

    uuid = f.new_uuid()
    apply(f.message(uuid, "hello"))
    with pytest.raises(CommandError, match=uuid):
        call_command("recount_page_errors", uuid)
