"""Parsing and building of the conversation WebSocket protocol."""

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from conversations import protocol
from conversations.protocol import (
    AddCoupon,
    AddItem,
    ConversationEventQueuePosition,
    ConversationEventRRWeb,
    ConversationEventTyping,
    ConversationMessage,
    ConversationParticipant,
    ConversationSummary,
    ConversationWebchatQueueStatus,
    Envelope,
    ProtocolError,
    QueueAgent,
    QueueEntry,
    ReadMessage,
    WebchatContext,
    build_ping,
    build_queue_position,
    dumps,
    parse_dts,
    parse_envelope,
    parse_frame,
)

CONV = "c0a80001-0000-4000-8000-000000000001"


def sha(text: str) -> str:
    """Return the lowercase hex SHA-256 of text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event(event_type: str, **fields: object) -> dict:
    """Build an event envelope for CONV."""
    return {"type": "event", "event_type": event_type, "conversation_uuid": CONV, **fields}


PARTICIPANT = {
    "conversation_participant_arn": "arn:agent:1",
    "conversation_participant_name": "Ann",
    "conversation_participant_uuid": "p-1",
    "email": "ann@example.com",
    "joined_dts": "2024-05-01T10:00:00Z",
    "language_iso_code": "en",
    "last_message_dts": "2024-05-01T10:05:00.250Z",
    "left_dts": None,
    "profile_image_url": "https://example.com/ann.png",
    "sms_phone_number": "+15550100",
    "status": "joined",
    "timezone": "America/New_York",
    "unread_messages": 3,
}
SUMMARY = {
    "closed": False,
    "conversation_arn": "arn:conversation:1",
    "conversation_uuid": CONV,
    "customer_first_message_unresponded_to_dts": "2024-05-01T10:00:00",
    "last_conversation_message_body": "hello",
    "last_conversation_participant_arn": "arn:agent:1",
    "last_conversation_participant_name": "Ann",
    "last_interactive_message_dts": "2024-05-01T10:05:00+02:00",
    "last_message_dts": "2024-05-01T10:05:00.123456Z",
    "medium": "websocket",
    "merchant_id": "DEMO",
    "message_count": 4,
    "participants": [PARTICIPANT],
    "sentiment": {"sentiment": "POSITIVE", "positive": 0.9},
    "start_dts": "2024-05-01T09:59:00Z",
    "unread_messages": True,
    "visible": True,
}
MESSAGE = {
    "author_conversation_participant_arn": "arn:customer:1",
    "author_conversation_participant_name": "Carl",
    "body": "Where is my order?",
    "client_message_id": "client-1",
    "conversation_message_uuid": "m-1",
    "delay_until_dts": None,
    "language_iso_code": "en",
    "media_urls": ["https://example.com/a.png"],
    "merchant_id": "DEMO",
    "message_dts": "2024-05-01T10:01:00Z",
    "message_epoch": 1714557660000,
    "message_type": "webchat",
    "translations": [{"body": "¿Dónde está mi pedido?", "language_iso_code": "es"}],
    "transport_statuses": [{"conversation_participant_arn": "arn:agent:1", "status": "read"}],
    "type": "message",
    "upload_keys": ["uploads/a.png"],
}
QUEUE_ENTRY = {
    "conversation_participant_arn": "arn:customer:1",
    "conversation_participant_name": "Carl",
    "conversation_webchat_queue_uuid": "q-1",
    "email": "carl@example.com",
    "join_dts": "2024-05-01T09:58:00Z",
    "participant_language_iso_code": "en",
    "question": "Where is my order?",
    "queue_name": "support",
}
QUEUE_STATUS = {
    "agent_available_count": 1,
    "agent_busy_count": 0,
    "agent_count": 1,
    "agent_unavailable_count": 0,
    "agents": [
        {
            "agent_status": "available",
            "conversation_participant_arn": "arn:agent:1",
            "conversation_participant_name": "Ann",
            "last_chat_dts": "2024-05-01T09:00:00Z",
            "next_round_robin": True,
            "profile_image_url": None,
        }
    ],
    "customer_abandon_count": 0,
    "customer_active_count": 1,
    "customer_average_abandon_time_seconds": 0,
    "customer_average_chat_time_seconds": 120,
    "customer_average_hold_time_seconds": 30,
    "customer_chat_count": 5,
    "customer_waiting_count": 1,
    "customer_waiting_join_dts": "2024-05-01T09:58:00Z",
    "queue_entries": [QUEUE_ENTRY],
    "queue_name": "support",
}
RRWEB_DATA = json.dumps(
    [{"type": 4, "data": {"href": "https://shop.example.com/"}, "timestamp": 1}]
)


def rrweb(**fields: object) -> dict:
    """Build a valid single-part rrweb payload, overriding some fields."""
    payload = {"type": "init", "event_index": 0, "data": RRWEB_DATA}
    payload.update(fields)
    return {key: value for key, value in payload.items() if value is not ...}


# --- Valid frames of every type and event_type --------------------------------------------------

VALID_FRAMES = [
    pytest.param({"type": "ping"}, type(None), id="ping"),
    pytest.param({"type": "check queue position", "conversation_uuid": CONV}, type(None), id="cqp"),
    pytest.param(
        {"type": "message", "conversation_uuid": CONV, "message": MESSAGE}, type(None), id="message"
    ),
    pytest.param(
        event("queue position", event_queue_position={"available": True, "position": 2}),
        ConversationEventQueuePosition,
        id="queue position",
    ),
    pytest.param(event("webchat start conversation"), type(None), id="webchat start conversation"),
    pytest.param(
        event("conversation closed", event_conversation_closed=SUMMARY),
        ConversationSummary,
        id="conversation closed",
    ),
    pytest.param(
        event("new conversation", event_new_conversation=SUMMARY),
        ConversationSummary,
        id="new conversation",
    ),
    pytest.param(
        event("new message", event_new_message=SUMMARY), ConversationSummary, id="new message"
    ),
    pytest.param(
        event("updated message", event_updated_message=MESSAGE),
        ConversationMessage,
        id="updated message",
    ),
    pytest.param(
        {
            "type": "event",
            "event_type": "queue status update",
            "event_queue_status_update": QUEUE_STATUS,
        },
        ConversationWebchatQueueStatus,
        id="queue status update",
    ),
    pytest.param(event("rrweb", event_rrweb=rrweb()), ConversationEventRRWeb, id="rrweb"),
    pytest.param(
        event("participant update", event_participant_update=SUMMARY),
        ConversationSummary,
        id="participant update",
    ),
    pytest.param(
        event(
            "participant join",
            event_participant_join=SUMMARY,
            event_participant_join_participant=PARTICIPANT,
        ),
        ConversationSummary,
        id="participant join",
    ),
    pytest.param(
        event(
            "participant left",
            event_participant_left=SUMMARY,
            event_participant_left_participant=PARTICIPANT,
        ),
        ConversationSummary,
        id="participant left",
    ),
    pytest.param(
        event(
            "read message",
            event_read_message={
                "conversation_message_uuid": "m-1",
                "message_dts": "2024-05-01T10:01:00Z",
                "message_epoch": 1714557660000,
            },
        ),
        ReadMessage,
        id="read message",
    ),
    pytest.param(
        event(
            "typing",
            event_typing={
                "author_conversation_participant_arn": "arn:customer:1",
                "author_conversation_participant_name": "Carl",
                "value": "Where is",
            },
        ),
        ConversationEventTyping,
        id="typing",
    ),
    pytest.param(
        event(
            "add coupon",
            event_add_coupon={
                "agent_arn": "arn:agent:1",
                "agent_name": "Ann",
                "coupon_code": "SAVE10",
            },
        ),
        AddCoupon,
        id="add coupon",
    ),
    pytest.param(
        event(
            "add item",
            event_add_item={
                "agent_arn": "arn:agent:1",
                "agent_name": "Ann",
                "items": [{"item_id": "SKU1", "quantity": 2}],
            },
        ),
        AddItem,
        id="add item",
    ),
    pytest.param(
        event(
            "webchat context",
            event_webchat_context={
                "cart_id": "cart-1",
                "ucacid": "ucacid-1",
                "url": "https://shop.example.com/",
            },
        ),
        WebchatContext,
        id="webchat context",
    ),
    pytest.param(
        event("engage customer", event_engage_customer=QUEUE_ENTRY),
        QueueEntry,
        id="engage customer",
    ),
    pytest.param(
        event("queue new member", event_queue_new_member=QUEUE_ENTRY),
        QueueEntry,
        id="queue new member",
    ),
]


@pytest.mark.parametrize(("frame", "payload_type"), VALID_FRAMES)
def test_valid_frame_parses_into_its_payload_model(frame: dict, payload_type: type) -> None:
    """Each type and event_type parses, with the payload model named for it."""
    envelope = parse_frame(json.dumps(frame))
    assert isinstance(envelope, Envelope)
    assert envelope.type == frame["type"]
    assert envelope.event_type == frame.get("event_type")
    assert envelope.conversation_uuid == frame.get("conversation_uuid")
    assert isinstance(envelope.payload, payload_type)
    assert envelope.raw == frame


def test_every_known_event_type_has_a_valid_frame_in_the_table() -> None:
    """The table above covers every seed and later event_type."""
    covered = {p.values[0].get("event_type") for p in VALID_FRAMES}
    assert set(protocol.EVENT_TYPES) <= covered
    assert set(protocol.SEED_EVENT_TYPES) | set(protocol.LATER_EVENT_TYPES) == set(
        protocol.EVENT_TYPES
    )


@pytest.mark.parametrize("frame", [p.values[0] for p in VALID_FRAMES])
def test_parse_envelope_of_decoded_object_equals_parse_frame(frame: dict) -> None:
    """parse_envelope on the decoded object gives the same envelope as parse_frame."""
    assert parse_envelope(frame) == parse_frame(json.dumps(frame))


def test_message_fields_are_typed() -> None:
    """A message frame exposes every ConversationMessage field with its Python type."""
    envelope = parse_frame(
        json.dumps({"type": "message", "conversation_uuid": CONV, "message": MESSAGE})
    )
    message = envelope.message
    assert envelope.payload is None
    assert message.conversation_message_uuid == "m-1"
    assert message.author_conversation_participant_arn == "arn:customer:1"
    assert message.body == "Where is my order?"
    assert message.message_dts == datetime(2024, 5, 1, 10, 1, tzinfo=UTC)
    assert message.delay_until_dts is None
    assert message.message_epoch == 1714557660000
    assert message.media_urls == ("https://example.com/a.png",)
    assert message.upload_keys == ("uploads/a.png",)
    assert message.translations[0].body == "¿Dónde está mi pedido?"
    assert message.translations[0].language_iso_code == "es"
    assert message.transport_statuses[0].status == "read"
    assert message.transport_statuses[0].conversation_participant_arn == "arn:agent:1"
    assert message.type == "message"
    assert message.raw is envelope.raw["message"]


def test_message_lists_default_to_empty_tuples() -> None:
    """Absent arrays of a message become empty tuples."""
    envelope = parse_envelope(
        {
            "type": "message",
            "conversation_uuid": CONV,
            "message": {"conversation_message_uuid": "m"},
        }
    )
    assert envelope.message.media_urls == ()
    assert envelope.message.translations == ()
    assert envelope.message.transport_statuses == ()
    assert envelope.message.upload_keys == ()
    assert envelope.message.type is None


def test_summary_fields_and_participants_are_typed() -> None:
    """A summary exposes its fields, parsed dates and participants."""
    summary = parse_envelope(event("new conversation", event_new_conversation=SUMMARY)).payload
    assert summary.closed is False
    assert summary.unread_messages is True
    assert summary.visible is True
    assert summary.message_count == 4
    assert summary.medium == "websocket"
    assert summary.sentiment == {"sentiment": "POSITIVE", "positive": 0.9}
    assert summary.start_dts == datetime(2024, 5, 1, 9, 59, tzinfo=UTC)
    assert summary.last_interactive_message_dts == datetime(2024, 5, 1, 8, 5, tzinfo=UTC)
    assert summary.customer_first_message_unresponded_to_dts == datetime(2024, 5, 1, 10, tzinfo=UTC)
    (participant,) = summary.participants
    assert isinstance(participant, ConversationParticipant)
    assert participant.conversation_participant_name == "Ann"
    assert participant.unread_messages == 3
    assert participant.left_dts is None
    assert participant.last_message_dts == datetime(2024, 5, 1, 10, 5, 0, 250000, tzinfo=UTC)


def test_queue_status_fields_are_typed() -> None:
    """A queue status update exposes counts, agents and queue entries."""
    envelope = parse_envelope(
        {
            "type": "event",
            "event_type": "queue status update",
            "event_queue_status_update": QUEUE_STATUS,
        }
    )
    status = envelope.payload
    assert envelope.conversation_uuid is None
    assert status.agent_count == 1
    assert status.customer_average_chat_time_seconds == 120
    assert status.queue_name == "support"
    (agent,) = status.agents
    assert isinstance(agent, QueueAgent)
    assert agent.agent_status == "available"
    assert agent.next_round_robin is True
    assert agent.last_chat_dts == datetime(2024, 5, 1, 9, tzinfo=UTC)
    (entry,) = status.queue_entries
    assert entry.conversation_webchat_queue_uuid == "q-1"
    assert entry.join_dts == datetime(2024, 5, 1, 9, 58, tzinfo=UTC)


def test_participant_join_exposes_summary_and_participant() -> None:
    """participant join carries the summary as payload and the participant apart."""
    envelope = parse_envelope(
        event(
            "participant join",
            event_participant_join=SUMMARY,
            event_participant_join_participant=PARTICIPANT,
        )
    )
    assert envelope.payload.conversation_uuid == CONV
    assert envelope.participant.conversation_participant_arn == "arn:agent:1"


@pytest.mark.parametrize("which", ["participant join", "participant left"])
def test_participant_event_with_only_the_participant_is_valid(which: str) -> None:
    """participant join/left need only one of the summary and the participant."""
    key = protocol.PARTICIPANT_EVENT_FIELDS[which]
    envelope = parse_envelope(event(which, **{key: PARTICIPANT}))
    assert envelope.payload is None
    assert envelope.participant.conversation_participant_uuid == "p-1"


@pytest.mark.parametrize("event_type", sorted(protocol.SUMMARY_EVENT_FIELDS))
def test_summary_event_takes_conversation_uuid_from_summary_when_envelope_lacks_it(
    event_type: str,
) -> None:
    """Summary events fall back to the summary's conversation_uuid."""
    frame = {
        "type": "event",
        "event_type": event_type,
        protocol.SUMMARY_EVENT_FIELDS[event_type]: SUMMARY,
    }
    assert parse_envelope(frame).conversation_uuid == CONV


def test_webchat_start_conversation_has_no_payload() -> None:
    """webchat start conversation needs only the conversation."""
    envelope = parse_envelope(event("webchat start conversation"))
    assert envelope.payload is None
    assert envelope.is_known_event


def test_unknown_event_type_is_accepted_without_payload() -> None:
    """An event_type from a later release parses, with no payload, marked unknown."""
    frame = {"type": "event", "event_type": "agent whisper", "event_agent_whisper": {"x": 1}}
    envelope = parse_envelope(frame)
    assert envelope.event_type == "agent whisper"
    assert envelope.payload is None
    assert envelope.conversation_uuid is None
    assert not envelope.is_known_event
    assert envelope.raw is frame


@pytest.mark.parametrize(
    ("frame", "known"),
    [
        ({"type": "ping"}, False),
        ({"type": "message", "conversation_uuid": CONV, "message": MESSAGE}, False),
        (event("typing", event_typing={}), True),
        (event("brand new thing"), False),
    ],
)
def test_is_known_event_is_true_only_for_known_event_types(frame: dict, known: bool) -> None:
    """is_known_event tells events this protocol knows from the rest."""
    assert parse_envelope(frame).is_known_event is known


def test_unknown_fields_are_kept_in_raw_everywhere() -> None:
    """Extra fields at any level never fail and stay in raw."""
    frame = {
        "type": "message",
        "conversation_uuid": CONV,
        "future_field": [1, 2],
        "message": {
            **MESSAGE,
            "reactions": {"👍": 2},
            "translations": [{"body": "x", "language_iso_code": "fr", "engine": "v2"}],
        },
    }
    envelope = parse_frame(json.dumps(frame))
    assert envelope.raw["future_field"] == [1, 2]
    assert envelope.message.raw["reactions"] == {"👍": 2}
    assert envelope.message.translations[0].raw["engine"] == "v2"


def test_raw_is_the_original_object_not_a_copy() -> None:
    """raw holds the decoded object itself."""
    frame = event("typing", event_typing={"value": "hi"})
    envelope = parse_envelope(frame)
    assert envelope.raw is frame
    assert envelope.payload.raw is frame["event_typing"]


def test_enum_like_strings_of_payloads_accept_later_values() -> None:
    """Message type, medium and transport status accept values added by later releases."""
    message = {
        "conversation_message_uuid": "m",
        "type": "tool call",
        "transport_statuses": [{"status": "DELIVERED_BY_CARRIER_PIGEON"}],
    }
    envelope = parse_envelope({"type": "message", "conversation_uuid": CONV, "message": message})
    assert envelope.message.type == "tool call"
    assert envelope.message.transport_statuses[0].status == "DELIVERED_BY_CARRIER_PIGEON"


def test_nulls_count_as_absent() -> None:
    """An optional field that is null is the same as a missing one."""
    frame = {"type": "ping", "conversation_uuid": None, "conversation_arn": None}
    assert parse_envelope(frame).conversation_uuid is None


def test_integral_floats_are_accepted_as_integers() -> None:
    """3.0 is an integer; the parsed value is an int."""
    envelope = parse_frame(
        '{"type":"event","event_type":"rrweb","conversation_uuid":"c",'
        f'"event_rrweb":{{"type":"events","event_index":3.0,"data":"[]","data_part":1.0,'
        f'"data_total_parts":2.0,"data_total_sha256":"{"0" * 64}"}}}}'
    )
    assert envelope.payload.event_index == 3
    assert type(envelope.payload.event_index) is int
    assert envelope.payload.data_total_parts == 2


def test_conversation_arn_is_exposed() -> None:
    """conversation_arn (a later addition) comes through."""
    assert parse_envelope({"type": "ping", "conversation_arn": "arn:c"}).conversation_arn == "arn:c"


def test_frame_may_be_utf8_bytes() -> None:
    """A frame given as bytes is decoded as UTF-8."""
    assert parse_frame(b'{"type": "ping"}').type == "ping"


def test_payload_models_are_frozen() -> None:
    """Parsed values cannot be changed."""
    envelope = parse_envelope({"type": "ping"})
    with pytest.raises(AttributeError):
        envelope.type = "message"


# --- Bad frames and their reasons -------------------------------------------------------------

TYPE_CHOICES = "type must be one of 'message', 'event', 'ping', 'check queue position', got "


def msg(**fields: object) -> dict:
    """Build a message frame whose message has the given extra fields."""
    message = {"conversation_message_uuid": "m", **fields}
    return {"type": "message", "conversation_uuid": "c", "message": message}


def ev(event_type: str, **fields: object) -> dict:
    """Build an event frame for conversation "c"."""
    return {"type": "event", "event_type": event_type, "conversation_uuid": "c", **fields}


def queue_status(**fields: object) -> dict:
    """Build a queue status update frame with the given status fields."""
    return {
        "type": "event",
        "event_type": "queue status update",
        "event_queue_status_update": fields,
    }


BAD_FRAMES = [
    # JSON and envelope shape
    ("", "invalid JSON: Expecting value: line 1 column 1 (char 0)"),
    (
        "{",
        "invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ),
    ("[1, 2]", "a frame must be a JSON object, got array"),
    ('"ping"', "a frame must be a JSON object, got string"),
    ("null", "a frame must be a JSON object, got null"),
    ("3", "a frame must be a JSON object, got number"),
    ('{"type": "ping", "n": NaN}', "invalid JSON: NaN is not a JSON value"),
    ('{"type": "ping", "n": -Infinity}', "invalid JSON: -Infinity is not a JSON value"),
    ('{"type": "ping", "n": 1e999}', "invalid JSON: number 1e999 is out of range"),
    (
        '{"type": "ping", "s": "\\ud800"}',
        "invalid JSON: a string holds an unpaired UTF-16 surrogate",
    ),
    ("[" * 100_000, "invalid JSON: nested too deeply"),
    ({}, "type is required"),
    ({"type": "pong"}, TYPE_CHOICES + "'pong'"),
    ({"type": 1}, TYPE_CHOICES + "1"),
    ({"type": ["ping"]}, TYPE_CHOICES + "array"),
    ({"type": "event", "conversation_uuid": "c"}, "event_type is required when type is 'event'"),
    ({"type": "event", "event_type": 7}, "event_type must be a string, got 7"),
    (
        {"type": "ping", "conversation_uuid": ""},
        "conversation_uuid must be a non-empty string, got ''",
    ),
    (
        {"type": "ping", "conversation_uuid": 12},
        "conversation_uuid must be a non-empty string, got 12",
    ),
    ({"type": "ping", "conversation_arn": False}, "conversation_arn must be a string, got false"),
    # conversation_uuid requirements
    (
        {"type": "check queue position"},
        "conversation_uuid is required for type 'check queue position'",
    ),
    (
        {"type": "message", "message": {"conversation_message_uuid": "m"}},
        "conversation_uuid is required for type 'message'",
    ),
    (
        {"type": "event", "event_type": "webchat start conversation"},
        "conversation_uuid is required for event_type 'webchat start conversation'",
    ),
    (
        {"type": "event", "event_type": "typing", "event_typing": {}},
        "conversation_uuid is required for event_type 'typing'",
    ),
    (
        {"type": "event", "event_type": "new conversation", "event_new_conversation": {}},
        "conversation_uuid is required for event_type 'new conversation'",
    ),
    (
        {
            **ev("new message", event_new_message={"conversation_uuid": "b"}),
            "conversation_uuid": "a",
        },
        "event_new_message.conversation_uuid 'b' does not match conversation_uuid 'a'",
    ),
    # message
    ({"type": "message", "conversation_uuid": "c"}, "message is required when type is 'message'"),
    (
        {"type": "message", "conversation_uuid": "c", "message": []},
        "message must be an object, got array",
    ),
    (
        {"type": "message", "conversation_uuid": "c", "message": {}},
        "message.conversation_message_uuid is required",
    ),
    (
        msg(conversation_message_uuid=""),
        "message.conversation_message_uuid must be a non-empty string, got ''",
    ),
    (msg(body=5), "message.body must be a string, got 5"),
    (msg(message_epoch="1"), "message.message_epoch must be an integer, got '1'"),
    (msg(message_epoch=True), "message.message_epoch must be an integer, got true"),
    (msg(message_epoch=1.5), "message.message_epoch must be an integer, got 1.5"),
    (
        msg(message_epoch=2**63),
        "message.message_epoch must be an integer from -9223372036854775808 to "
        "9223372036854775807, got 9223372036854775808",
    ),
    (
        msg(message_dts="yesterday"),
        "message.message_dts must be an ISO 8601 date-time, got 'yesterday'",
    ),
    (msg(media_urls="a.png"), "message.media_urls must be an array, got 'a.png'"),
    (msg(media_urls=["a", 2]), "message.media_urls[1] must be a string, got 2"),
    (
        msg(translations=[{"body": []}]),
        "message.translations[0].body must be a string, got array",
    ),
    (
        msg(transport_statuses=["sent"]),
        "message.transport_statuses[0] must be an object, got 'sent'",
    ),
    # event payloads
    (
        ev("updated message"),
        "event_updated_message is required for event_type 'updated message'",
    ),
    (
        ev("updated message", event_updated_message={"body": "x"}),
        "event_updated_message.conversation_message_uuid is required",
    ),
    (ev("queue position"), "event_queue_position is required for event_type 'queue position'"),
    (
        ev("queue position", event_queue_position={"available": "yes"}),
        "event_queue_position.available must be a boolean, got 'yes'",
    ),
    (
        {"type": "event", "event_type": "queue status update"},
        "event_queue_status_update is required for event_type 'queue status update'",
    ),
    (
        queue_status(agents=[{"next_round_robin": 1}]),
        "event_queue_status_update.agents[0].next_round_robin must be a boolean, got 1",
    ),
    (
        queue_status(queue_entries=[{"join_dts": 5}]),
        "event_queue_status_update.queue_entries[0].join_dts must be an ISO 8601 date-time, got 5",
    ),
    (
        ev("conversation closed"),
        "event_conversation_closed is required for event_type 'conversation closed'",
    ),
    (
        ev("participant update", event_participant_update="x"),
        "event_participant_update must be an object, got 'x'",
    ),
    (
        ev("new conversation", event_new_conversation={"participants": [{"unread_messages": "2"}]}),
        "event_new_conversation.participants[0].unread_messages must be an integer, got '2'",
    ),
    (
        ev("new conversation", event_new_conversation={"sentiment": "happy"}),
        "event_new_conversation.sentiment must be an object, got 'happy'",
    ),
    (
        ev("new message", event_new_message={"closed": "false"}),
        "event_new_message.closed must be a boolean, got 'false'",
    ),
    (
        ev("participant join"),
        "event_participant_join or event_participant_join_participant is required "
        "for event_type 'participant join'",
    ),
    (
        ev("participant left", event_participant_left_participant={"left_dts": "soon"}),
        "event_participant_left_participant.left_dts must be an ISO 8601 date-time, got 'soon'",
    ),
    (
        ev("read message", event_read_message={}),
        "event_read_message.conversation_message_uuid is required",
    ),
    (ev("typing"), "event_typing is required for event_type 'typing'"),
    (ev("typing", event_typing={"value": 1}), "event_typing.value must be a string, got 1"),
    (
        ev("add coupon", event_add_coupon={"coupon_code": None, "agent_arn": 1}),
        "event_add_coupon.agent_arn must be a string, got 1",
    ),
    (
        ev("add item", event_add_item={"items": [1]}),
        "event_add_item.items[0] must be an object, got 1",
    ),
    (
        ev("webchat context"),
        "event_webchat_context is required for event_type 'webchat context'",
    ),
    (
        ev("engage customer"),
        "event_engage_customer is required for event_type 'engage customer'",
    ),
    (
        ev("queue new member", event_queue_new_member={"email": {}}),
        "event_queue_new_member.email must be a string, got object",
    ),
    (ev("rrweb"), "event_rrweb is required for event_type 'rrweb'"),
]


@pytest.mark.parametrize(("frame", "reason"), BAD_FRAMES)
def test_bad_frame_is_rejected_with_its_precise_reason(frame: str | dict, reason: str) -> None:
    """Each bad frame raises ProtocolError naming the field and the bad value."""
    text = frame if isinstance(frame, str) else json.dumps(frame)
    with pytest.raises(ProtocolError) as info:
        parse_frame(text)
    assert str(info.value) == reason


@pytest.mark.parametrize("value", [[], "ping", 3, None, True])
def test_parse_envelope_rejects_non_objects(value: object) -> None:
    """parse_envelope needs a dict."""
    with pytest.raises(ProtocolError, match="a frame must be a JSON object"):
        parse_envelope(value)


def test_protocol_error_is_a_value_error() -> None:
    """Callers may catch ProtocolError as ValueError."""
    assert issubclass(ProtocolError, ValueError)


def test_huge_integer_literal_is_a_protocol_error() -> None:
    """A number with thousands of digits is refused, not a crash."""
    with pytest.raises(ProtocolError, match="invalid JSON"):
        parse_frame('{"type": "ping", "n": ' + "9" * 5000 + "}")


def test_error_message_truncates_long_values() -> None:
    """A long bad value is shortened in the message."""
    with pytest.raises(ProtocolError) as info:
        parse_frame(json.dumps({"type": "x" * 10_000}))
    assert len(str(info.value)) < 200


def test_invalid_utf8_bytes_are_a_protocol_error() -> None:
    """Bytes that are not UTF-8 are refused."""
    with pytest.raises(ProtocolError, match="a frame must be UTF-8 text"):
        parse_frame(b'{"type": "\xff"}')


def test_raw_lone_surrogate_in_text_is_a_protocol_error() -> None:
    """A str holding an unescaped lone surrogate is refused like an escaped one."""
    with pytest.raises(ProtocolError, match="unpaired UTF-16 surrogate"):
        parse_frame('{"type": "ping", "s": "\ud800"}')


def test_surrogate_pair_escape_is_accepted() -> None:
    """A properly paired \\ud83d\\ude00 escape is one character, not an error."""
    envelope = parse_frame('{"type": "ping", "emoji": "\\ud83d\\ude00"}')
    assert envelope.raw["emoji"] == "😀"


# --- Date-times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:01:02", datetime(2024, 5, 1, 10, 1, 2, tzinfo=UTC)),
        ("2024-05-01T10:01:02Z", datetime(2024, 5, 1, 10, 1, 2, tzinfo=UTC)),
        ("2024-05-01T10:01:02.5Z", datetime(2024, 5, 1, 10, 1, 2, 500000, tzinfo=UTC)),
        ("2024-05-01T10:01:02.123", datetime(2024, 5, 1, 10, 1, 2, 123000, tzinfo=UTC)),
        ("2024-05-01T10:01:02.123456+00:00", datetime(2024, 5, 1, 10, 1, 2, 123456, tzinfo=UTC)),
        ("2024-05-01T10:01:02.1234567Z", datetime(2024, 5, 1, 10, 1, 2, 123456, tzinfo=UTC)),
        ("2024-05-01T12:01:02+02:00", datetime(2024, 5, 1, 10, 1, 2, tzinfo=UTC)),
        ("2024-05-01T05:01:02-0500", datetime(2024, 5, 1, 10, 1, 2, tzinfo=UTC)),
        ("2024-05-01 10:01:02", datetime(2024, 5, 1, 10, 1, 2, tzinfo=UTC)),
        ("2024-05-01T10:01", datetime(2024, 5, 1, 10, 1, tzinfo=UTC)),
    ],
)
def test_parse_dts_accepts_iso_8601_forms_and_returns_aware_utc(
    text: str, expected: datetime
) -> None:
    """Zones, Z, fractions and naive values all give an aware UTC datetime."""
    parsed = parse_dts(text, field="x")
    assert parsed == expected
    assert parsed.tzinfo is UTC
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "2024-05-01",
        "2024-13-01T00:00:00Z",
        "2024-05-01T25:00:00",
        "2024-05-01T10:00:00+25:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        1714557660,
        None,
        ["2024-05-01T10:00:00Z"],
    ],
)
def test_parse_dts_rejects_non_dates_with_the_field_name(value: object) -> None:
    """Anything but an ISO 8601 date-time string names the field and the value."""
    with pytest.raises(ProtocolError) as info:
        parse_dts(value, field="message.message_dts")
    assert str(info.value).startswith("message.message_dts must be an ISO 8601 date-time, got ")


def test_parse_dts_error_shows_the_repr_of_a_string() -> None:
    """The message quotes the bad string the way repr does."""
    with pytest.raises(ProtocolError) as info:
        parse_dts("nope", field="start_dts")
    assert str(info.value) == "start_dts must be an ISO 8601 date-time, got 'nope'"


def test_parse_dts_keeps_the_instant_of_an_offset() -> None:
    """An offset date-time is converted, not relabelled."""
    local = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert parse_dts(local.isoformat(), field="x") == local


# --- rrweb parts and checksums ------------------------------------------------------------------


def rrweb_frame(**fields: object) -> str:
    """Build the JSON text of an rrweb event frame."""
    return json.dumps(event("rrweb", event_rrweb=rrweb(**fields)))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, (1, 1, False)),
        ({"data_part": 1, "data_total_parts": 1}, (1, 1, False)),
        ({"data_part": 2, "data_total_parts": 3, "data_total_sha256": "a" * 64}, (2, 3, True)),
        ({"data_part": 3, "data_total_parts": 3, "data_total_sha256": "a" * 64}, (3, 3, True)),
        ({"data_sha256": sha(RRWEB_DATA)}, (1, 1, False)),
        ({"data_total_sha256": sha(RRWEB_DATA)}, (1, 1, False)),
        ({"data_sha256": sha(RRWEB_DATA), "data_total_sha256": sha(RRWEB_DATA)}, (1, 1, False)),
        (
            {
                "data_part": 1,
                "data_total_parts": 2,
                "data_sha256": sha(RRWEB_DATA),
                "data_total_sha256": sha(RRWEB_DATA + "more"),
            },
            (1, 2, True),
        ),
        ({"type": "events", "event_index": 41}, (1, 1, False)),
    ],
)
def test_rrweb_valid_parts(fields: dict, expected: tuple[int, int, bool]) -> None:
    """Whole batches and parts with their checksums parse with defaults filled in."""
    payload = parse_frame(rrweb_frame(**fields)).payload
    assert (payload.data_part, payload.data_total_parts, payload.is_multipart) == expected
    assert payload.data == RRWEB_DATA


def test_rrweb_fields_come_through() -> None:
    """Every rrweb field is exposed."""
    payload = parse_frame(
        rrweb_frame(type="events", event_index=7, data_sha256=sha(RRWEB_DATA))
    ).payload
    assert payload.type == "events"
    assert payload.event_index == 7
    assert payload.data_sha256 == sha(RRWEB_DATA)
    assert payload.data_total_sha256 is None


def test_rrweb_checksum_covers_the_utf8_bytes_of_non_ascii_data() -> None:
    """data_sha256 is of the UTF-8 bytes, so non-ASCII data checks out."""
    data = '[{"type":3,"data":{"text":"héllo ✓ 😀"}}]'
    payload = parse_frame(rrweb_frame(data=data, data_sha256=sha(data))).payload
    assert payload.data == data


def test_rrweb_empty_data_is_a_string() -> None:
    """Empty data is still a string; its checksum is that of no bytes."""
    payload = parse_frame(rrweb_frame(data="", data_sha256=sha(""))).payload
    assert payload.data == ""


BAD_HASH = "0" * 64
RRWEB_ERRORS = [
    ({"type": "snapshot"}, "event_rrweb.type must be 'init' or 'events', got 'snapshot'"),
    ({"type": ...}, "event_rrweb.type must be 'init' or 'events', got null"),
    (
        {"event_index": -1},
        f"event_rrweb.event_index must be an integer from 0 to {2**63 - 1}, got -1",
    ),
    (
        {"event_index": ...},
        f"event_rrweb.event_index must be an integer from 0 to {2**63 - 1}, got null",
    ),
    (
        {"event_index": "1"},
        f"event_rrweb.event_index must be an integer from 0 to {2**63 - 1}, got '1'",
    ),
    (
        {"event_index": True},
        f"event_rrweb.event_index must be an integer from 0 to {2**63 - 1}, got true",
    ),
    (
        {"event_index": 0.5},
        f"event_rrweb.event_index must be an integer from 0 to {2**63 - 1}, got 0.5",
    ),
    ({"data": ...}, "event_rrweb.data must be a string, got null"),
    ({"data": [1]}, "event_rrweb.data must be a string, got array"),
    (
        {"data_total_parts": 0},
        "event_rrweb.data_total_parts must be an integer from 1 to 10000, got 0",
    ),
    (
        {"data_total_parts": "2"},
        "event_rrweb.data_total_parts must be an integer from 1 to 10000, got '2'",
    ),
    (
        {"data_part": 0},
        "event_rrweb.data_part must be an integer between 1 and data_total_parts, got 0",
    ),
    (
        {"data_part": 2},
        "event_rrweb.data_part must be an integer between 1 and data_total_parts, got 2",
    ),
    (
        {"data_part": 4, "data_total_parts": 3, "data_total_sha256": BAD_HASH},
        "event_rrweb.data_part must be an integer between 1 and data_total_parts, got 4",
    ),
    (
        {"data_part": 1.5, "data_total_parts": 3, "data_total_sha256": BAD_HASH},
        "event_rrweb.data_part must be an integer between 1 and data_total_parts, got 1.5",
    ),
    (
        {"data_part": False},
        "event_rrweb.data_part must be an integer between 1 and data_total_parts, got false",
    ),
    (
        {"data_part": 1, "data_total_parts": 2},
        "event_rrweb.data_total_sha256 is required when data_total_parts > 1",
    ),
    (
        {"data_sha256": "ABC"},
        "event_rrweb.data_sha256 must be 64 lowercase hex characters, got 'ABC'",
    ),
    (
        {"data_sha256": sha(RRWEB_DATA).upper()},
        "event_rrweb.data_sha256 must be 64 lowercase hex characters, "
        f"got '{sha(RRWEB_DATA).upper()}'",
    ),
    ({"data_sha256": 5}, "event_rrweb.data_sha256 must be 64 lowercase hex characters, got 5"),
    (
        {"data_total_sha256": "g" * 64},
        f"event_rrweb.data_total_sha256 must be 64 lowercase hex characters, got '{'g' * 64}'",
    ),
    (
        {"data_sha256": BAD_HASH},
        f"event_rrweb.data_sha256 does not match data: expected {sha(RRWEB_DATA)}, got {BAD_HASH}",
    ),
    (
        {"data_total_sha256": BAD_HASH},
        "event_rrweb.data_total_sha256 does not match data: "
        f"expected {sha(RRWEB_DATA)}, got {BAD_HASH}",
    ),
    (
        {
            "data_part": 1,
            "data_total_parts": 2,
            "data_sha256": BAD_HASH,
            "data_total_sha256": sha(RRWEB_DATA),
        },
        f"event_rrweb.data_sha256 does not match data: expected {sha(RRWEB_DATA)}, got {BAD_HASH}",
    ),
]


@pytest.mark.parametrize(("fields", "reason"), RRWEB_ERRORS)
def test_rrweb_part_and_checksum_rules(fields: dict, reason: str) -> None:
    """Each broken rrweb rule gives its precise reason."""
    with pytest.raises(ProtocolError) as info:
        parse_frame(rrweb_frame(**fields))
    assert str(info.value) == reason


def test_rrweb_not_an_object() -> None:
    """event_rrweb must be an object."""
    with pytest.raises(ProtocolError) as info:
        parse_envelope(event("rrweb", event_rrweb="data"))
    assert str(info.value) == "event_rrweb must be an object, got 'data'"


def test_rrweb_checksum_of_data_with_a_lone_surrogate_is_a_protocol_error() -> None:
    """A decoded object whose data cannot be UTF-8 encoded fails cleanly."""
    frame = event("rrweb", event_rrweb=rrweb(data="\ud800", data_sha256=BAD_HASH))
    with pytest.raises(ProtocolError, match="event_rrweb.data is not valid Unicode text"):
        parse_envelope(frame)


# --- Building -----------------------------------------------------------------------------------


def test_build_ping_is_the_ping_envelope() -> None:
    """The answer to a ping is {"type": "ping"}."""
    assert build_ping() == {"type": "ping"}
    assert parse_envelope(build_ping()).type == "ping"


@pytest.mark.parametrize(
    ("position", "available"), [(0, True), (3, True), (-1, False), (12, False)]
)
def test_build_queue_position_answers_check_queue_position(position: int, available: bool) -> None:
    """The queue position answer is a valid queue position event for the same conversation."""
    built = build_queue_position(conversation_uuid=CONV, position=position, available=available)
    assert built == {
        "type": "event",
        "event_type": "queue position",
        "conversation_uuid": CONV,
        "event_queue_position": {"available": available, "position": position},
    }
    envelope = parse_frame(dumps(built))
    assert envelope.conversation_uuid == CONV
    assert envelope.payload == ConversationEventQueuePosition(
        available=available, position=position, raw=built["event_queue_position"]
    )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {"conversation_uuid": "", "position": 1, "available": True},
            "conversation_uuid must be a non-empty string, got ''",
        ),
        (
            {"conversation_uuid": CONV, "position": True, "available": True},
            "position must be an integer, got true",
        ),
        (
            {"conversation_uuid": CONV, "position": 1.0, "available": True},
            "position must be an integer, got 1.0",
        ),
        (
            {"conversation_uuid": CONV, "position": 1, "available": 1},
            "available must be a boolean, got 1",
        ),
    ],
)
def test_build_queue_position_refuses_bad_arguments(kwargs: dict, reason: str) -> None:
    """The builder never produces an envelope that would not parse."""
    with pytest.raises(ProtocolError) as info:
        build_queue_position(**kwargs)
    assert str(info.value) == reason


def test_dumps_is_compact_json_keeping_unicode() -> None:
    """dumps writes compact JSON without escaping non-ASCII."""
    assert dumps({"type": "ping", "x": "é"}) == '{"type":"ping","x":"é"}'


def test_dumps_refuses_nan() -> None:
    """dumps never writes NaN, which is not JSON."""
    with pytest.raises(ValueError):
        dumps({"type": "ping", "x": float("nan")})


def test_summary_event_fields_table() -> None:
    """SUMMARY_EVENT_FIELDS maps each summary event to its envelope field."""
    assert protocol.SUMMARY_EVENT_FIELDS == {
        "new conversation": "event_new_conversation",
        "conversation closed": "event_conversation_closed",
        "new message": "event_new_message",
        "participant update": "event_participant_update",
        "participant join": "event_participant_join",
        "participant left": "event_participant_left",
    }
    assert protocol.MESSAGE_TYPES == ("message", "event", "ping", "check queue position")
