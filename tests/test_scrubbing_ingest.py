"""Card numbers never reach the archive: scrubbed as frames are applied, counted for staff."""

import json
import zlib

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from conversations import exports
from conversations.models import Conversation, Message, RejectedFrame, TimelineEvent
from conversations.selectors import recording_events_chunks
from replay.asgi import application
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "4111 1111 1111 1111"
ORDER = "1234 5678 9012 3456"  # fails the Luhn check: an order number stays


def packed(events: list) -> str:
    """@rrweb/packer output for each event: zlib of its JSON with "v", as latin-1 text."""
    return json.dumps(
        [
            zlib.compress(json.dumps({**event, "v": "v1"}).encode()).decode("latin-1")
            for event in events
        ]
    )


async def send(source, *frames: dict | str) -> None:
    comm = WebsocketCommunicator(application, f"/ws/ingest/?key={source.raw_key}")
    await comm.connect()
    for frame in frames:
        await comm.send_to(text_data=frame if isinstance(frame, str) else f.dumps(frame))
    await comm.send_to(text_data='{"type":"ping"}')
    assert json.loads(await comm.receive_from(timeout=5)) == {"type": "ping"}
    await comm.disconnect()


async def test_card_numbers_are_masked_everywhere_they_are_stored_and_counted(source, drain):
    uuid = f.new_uuid()
    page = f.rrweb_events(count=2)
    page[1]["data"]["node"]["childNodes"][0]["childNodes"][0]["childNodes"][0]["textContent"] = (
        f"Pay with {CARD}"
    )
    typed = [
        {
            "type": 3,
            "data": {"source": 5, "text": CARD.replace(" ", ""), "isChecked": False, "id": 4},
            "timestamp": f.T0 + 5000,
        }
    ]
    later = [
        {"type": 5, "data": {"tag": "note", "payload": {"card": CARD}}, "timestamp": f.T0 + 6000}
    ]
    await send(
        source,
        f.rrweb_frame(uuid, 0, page, kind="init"),
        f.rrweb_frame(uuid, 1, typed),
        f.rrweb_frame(uuid, 2, packed(later)),
        f.message(uuid, f"My card is {CARD}, order {ORDER}"),
        f.event(
            "typing",
            uuid,
            event_typing={"author_conversation_participant_name": "Ada", "value": f"card {CARD}"},
        ),
    )
    await drain()

    def stored() -> tuple[str, str, list, int]:
        conversation = Conversation.objects.get(uuid=uuid)
        message = Message.objects.get(conversation=conversation)
        events = json.loads(b"".join(recording_events_chunks(conversation)))
        archive = b"".join(exports.archive_chunks(conversation)).decode()
        typing = TimelineEvent.objects.get(conversation=conversation, event_type="typing")
        return (
            message.body
            + json.dumps(message.original)
            + typing.summary
            + json.dumps(typing.envelope),
            json.dumps(events) + archive,
            events,
            conversation.scrubbed_total,
        )

    texts, recording, events, count = await database_sync_to_async(stored)()
    for text in (texts, recording):
        assert CARD not in text and CARD.replace(" ", "") not in text
        assert "1111" in text  # the last four stay
    assert ORDER in texts  # not a card number: kept
    assert "**** **** **** 1111" in texts
    assert (
        events[1]["data"]["node"]["childNodes"][0]["childNodes"][0]["childNodes"][0]["textContent"]
        == "Pay with **** **** **** 1111"
    )
    assert count == 5  # text node, input, custom event, message body, typing value


async def test_a_frame_kept_aside_holds_no_card_number_either(source, drain):
    await send(source, '{"type": "message", "body": "' + CARD + '", "broken": ')
    await drain()
    rejected = await database_sync_to_async(RejectedFrame.objects.get)()
    assert CARD not in rejected.text and "**** **** **** 1111" in rejected.text


async def test_a_resent_frame_with_a_card_number_is_a_duplicate_not_a_conflict(source, drain):
    uuid = f.new_uuid()
    frame = f.message(uuid, f"card {CARD}")
    await send(source, frame)
    await send(source, frame)
    await drain()
    assert await database_sync_to_async(Message.objects.count)() == 1
    assert await database_sync_to_async(RejectedFrame.objects.count)() == 0
