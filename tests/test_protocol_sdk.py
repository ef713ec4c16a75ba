"""The protocol against UltraCart's own client library (ultracart-rest-sdk)."""

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from ultracart.api_client import ApiClient
from ultracart.configuration import Configuration
from ultracart.model.cart_item import CartItem
from ultracart.model.conversation_event_add_coupon import ConversationEventAddCoupon
from ultracart.model.conversation_event_add_item import ConversationEventAddItem
from ultracart.model.conversation_event_queue_position import ConversationEventQueuePosition
from ultracart.model.conversation_event_read_message import ConversationEventReadMessage
from ultracart.model.conversation_event_rr_web import ConversationEventRRWeb
from ultracart.model.conversation_event_typing import ConversationEventTyping
from ultracart.model.conversation_event_webchat_context import ConversationEventWebchatContext
from ultracart.model.conversation_message import ConversationMessage
from ultracart.model.conversation_message_translation import ConversationMessageTranslation
from ultracart.model.conversation_message_transport_status import (
    ConversationMessageTransportStatus,
)
from ultracart.model.conversation_participant import ConversationParticipant
from ultracart.model.conversation_sentiment import ConversationSentiment
from ultracart.model.conversation_summary import ConversationSummary
from ultracart.model.conversation_webchat_queue_status import ConversationWebchatQueueStatus
from ultracart.model.conversation_webchat_queue_status_agent import (
    ConversationWebchatQueueStatusAgent,
)
from ultracart.model.conversation_webchat_queue_status_queue_entry import (
    ConversationWebchatQueueStatusQueueEntry,
)
from ultracart.model.conversation_websocket_message import ConversationWebsocketMessage

from conversations import protocol
from conversations.protocol import build_ping, build_queue_position, dumps, parse_frame

CONV = "c0a80001-0000-4000-8000-000000000002"


class _Response:
    """The little of a REST response that ApiClient.deserialize reads."""

    def __init__(self, data: str) -> None:
        self.data = data

    def getheader(self, name: str) -> None:
        """Return no header: the body is JSON, not a file."""
        return None


@pytest.fixture(scope="module")
def api_client() -> Iterator[ApiClient]:
    """An SDK ApiClient, used only to (de)serialize."""
    client = ApiClient(Configuration())
    yield client
    client.close()


def sdk_parse(client: ApiClient, text: str) -> ConversationWebsocketMessage:
    """Deserialize JSON text into the SDK's envelope model, type-checked, as the SDK does."""
    return client.deserialize(_Response(text), (ConversationWebsocketMessage,), True)


def sdk_dumps(model: ConversationWebsocketMessage) -> str:
    """Serialize an SDK model the way the SDK sends a request body."""
    return json.dumps(ApiClient.sanitize_for_serialization(model))


def sha(text: str) -> str:
    """Return the lowercase hex SHA-256 of text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- What the server sends parses with the SDK ------------------------------------------------


def test_ping_answer_parses_with_the_sdk(api_client: ApiClient) -> None:
    """The server's ping answer is a valid SDK envelope."""
    model = sdk_parse(api_client, dumps(build_ping()))
    assert isinstance(model, ConversationWebsocketMessage)
    assert model.type == "ping"


@pytest.mark.parametrize(
    ("position", "available"),
    [(-1, False), (0, True), (1, True), (7, False), (2**31 - 1, True)],
)
def test_queue_position_answer_parses_with_the_sdk(
    api_client: ApiClient, position: int, available: bool
) -> None:
    """The server's queue position answer is a valid SDK envelope with the same values."""
    built = build_queue_position(conversation_uuid=CONV, position=position, available=available)
    model = sdk_parse(api_client, dumps(built))
    assert model.type == "event"
    assert model.event_type == "queue position"
    assert model.conversation_uuid == CONV
    assert isinstance(model.event_queue_position, ConversationEventQueuePosition)
    assert model.event_queue_position.position == position
    assert model.event_queue_position.available is available


def test_sdk_knows_every_message_and_event_type() -> None:
    """Our type and event_type tables match the SDK's enums."""
    allowed = ConversationWebsocketMessage.allowed_values
    assert set(allowed[("type",)].values()) == set(protocol.MESSAGE_TYPES)
    assert set(allowed[("event_type",)].values()) == set(protocol.EVENT_TYPES)


def test_sdk_envelope_fields_are_the_ones_we_parse() -> None:
    """Every payload field of the SDK envelope is one our tables name."""
    ours = (
        set(protocol.PAYLOAD_FIELDS.values())
        | set(protocol.PARTICIPANT_EVENT_FIELDS.values())
        | {"type", "event_type", "conversation_uuid", "conversation_arn", "message"}
    )
    assert set(ConversationWebsocketMessage.attribute_map.values()) == ours


# --- What the SDK builds parses with us ---------------------------------------------------------

PARTICIPANT = ConversationParticipant(
    conversation_participant_arn="arn:agent:1",
    conversation_participant_name="Ann",
    conversation_participant_uuid="p-1",
    email="ann@example.com",
    joined_dts="2024-05-01T10:00:00Z",
    language_iso_code="en",
    status="joined",
    unread_messages=2,
)
SUMMARY = ConversationSummary(
    closed=False,
    conversation_arn="arn:conversation:2",
    conversation_uuid=CONV,
    last_conversation_message_body="hi",
    last_message_dts="2024-05-01T10:02:00.500Z",
    medium="websocket",
    merchant_id="DEMO",
    message_count=3,
    participants=[PARTICIPANT],
    sentiment=ConversationSentiment(sentiment="NEUTRAL", neutral=0.8),
    start_dts="2024-05-01T09:59:00+00:00",
    unread_messages=True,
    visible=True,
)
MESSAGE = ConversationMessage(
    author_conversation_participant_arn="arn:customer:1",
    author_conversation_participant_name="Carl",
    body="Hello 👋",
    client_message_id="client-9",
    conversation_message_uuid="m-9",
    language_iso_code="en",
    media_urls=["https://example.com/x.png"],
    merchant_id="DEMO",
    message_dts="2024-05-01T10:02:00Z",
    message_epoch=1714557720000,
    translations=[ConversationMessageTranslation(body="Hola 👋", language_iso_code="es")],
    transport_statuses=[
        ConversationMessageTransportStatus(
            conversation_participant_arn="arn:agent:1", status="sent"
        )
    ],
    type="message",
    upload_keys=["k/x.png"],
)
QUEUE_ENTRY = ConversationWebchatQueueStatusQueueEntry(
    conversation_participant_arn="arn:customer:1",
    conversation_participant_name="Carl",
    conversation_webchat_queue_uuid="q-9",
    email="carl@example.com",
    join_dts="2024-05-01T09:58:00Z",
    question="Order?",
    queue_name="support",
)


def envelope(**fields: object) -> ConversationWebsocketMessage:
    """Build an SDK event envelope for CONV."""
    return ConversationWebsocketMessage(type="event", conversation_uuid=CONV, **fields)


def test_sdk_message_envelope_parses_with_the_same_values() -> None:
    """A message built with the SDK gives the same values."""
    parsed = parse_frame(
        sdk_dumps(
            ConversationWebsocketMessage(type="message", conversation_uuid=CONV, message=MESSAGE)
        )
    )
    message = parsed.message
    assert parsed.type == "message"
    assert parsed.conversation_uuid == CONV
    assert message.conversation_message_uuid == "m-9"
    assert message.body == "Hello 👋"
    assert message.author_conversation_participant_name == "Carl"
    assert message.message_dts == datetime(2024, 5, 1, 10, 2, tzinfo=UTC)
    assert message.message_epoch == 1714557720000
    assert message.media_urls == ("https://example.com/x.png",)
    assert message.upload_keys == ("k/x.png",)
    assert [(t.body, t.language_iso_code) for t in message.translations] == [("Hola 👋", "es")]
    assert [(s.conversation_participant_arn, s.status) for s in message.transport_statuses] == [
        ("arn:agent:1", "sent")
    ]


def test_sdk_updated_message_parses_as_message_payload() -> None:
    """An updated message built with the SDK carries the edited message."""
    parsed = parse_frame(
        sdk_dumps(envelope(event_type="updated message", event_updated_message=MESSAGE))
    )
    assert parsed.payload.conversation_message_uuid == "m-9"
    assert parsed.payload.body == "Hello 👋"


@pytest.mark.parametrize(
    ("fields", "part", "total"),
    [
        ({}, 1, 1),
        ({"data_part": 1, "data_total_parts": 1}, 1, 1),
        ({"data_part": 2, "data_total_parts": 3}, 2, 3),
    ],
)
def test_sdk_rrweb_event_parses_with_the_same_values(fields: dict, part: int, total: int) -> None:
    """An rrweb event built with the SDK, whole or a part, gives the same values."""
    data = '[{"type":4,"data":{"href":"https://shop.example.com/"},"timestamp":1714557720000}]'
    if total > 1:
        fields = {**fields, "data_total_sha256": sha(data * total)}
    rrweb = ConversationEventRRWeb(
        type="init", event_index=0, data=data, data_sha256=sha(data), **fields
    )
    parsed = parse_frame(sdk_dumps(envelope(event_type="rrweb", event_rrweb=rrweb)))
    payload = parsed.payload
    assert (payload.type, payload.event_index, payload.data) == ("init", 0, data)
    assert (payload.data_part, payload.data_total_parts) == (part, total)
    assert payload.data_sha256 == sha(data)
    assert payload.is_multipart is (total > 1)


def test_sdk_typing_event_parses_with_the_same_values() -> None:
    """A typing event built with the SDK gives the same values."""
    typing = ConversationEventTyping(
        author_conversation_participant_arn="arn:customer:1",
        author_conversation_participant_name="Carl",
        value="Where is my",
    )
    payload = parse_frame(sdk_dumps(envelope(event_type="typing", event_typing=typing))).payload
    assert payload.value == "Where is my"
    assert payload.author_conversation_participant_arn == "arn:customer:1"
    assert payload.author_conversation_participant_name == "Carl"


@pytest.mark.parametrize(("position", "available"), [(-1, False), (4, True)])
def test_sdk_queue_position_event_parses_with_the_same_values(
    position: int, available: bool
) -> None:
    """A queue position event built with the SDK gives the same values."""
    model = envelope(
        event_type="queue position",
        event_queue_position=ConversationEventQueuePosition(available=available, position=position),
    )
    payload = parse_frame(sdk_dumps(model)).payload
    assert (payload.position, payload.available) == (position, available)


def test_sdk_check_queue_position_parses() -> None:
    """A check queue position request built with the SDK parses."""
    model = ConversationWebsocketMessage(type="check queue position", conversation_uuid=CONV)
    parsed = parse_frame(sdk_dumps(model))
    assert (parsed.type, parsed.conversation_uuid) == ("check queue position", CONV)


@pytest.mark.parametrize("event_type", sorted(protocol.SUMMARY_EVENT_FIELDS))
def test_sdk_summary_events_parse_with_the_same_values(event_type: str) -> None:
    """Summary events built with the SDK (with participants) give the same values."""
    field = protocol.SUMMARY_EVENT_FIELDS[event_type]
    parsed = parse_frame(sdk_dumps(envelope(event_type=event_type, **{field: SUMMARY})))
    summary = parsed.payload
    assert summary.conversation_uuid == CONV
    assert summary.conversation_arn == "arn:conversation:2"
    assert summary.closed is False
    assert summary.visible is True
    assert summary.unread_messages is True
    assert summary.message_count == 3
    assert summary.medium == "websocket"
    assert summary.sentiment == {"sentiment": "NEUTRAL", "neutral": 0.8}
    assert summary.last_message_dts == datetime(2024, 5, 1, 10, 2, 0, 500000, tzinfo=UTC)
    assert summary.start_dts == datetime(2024, 5, 1, 9, 59, tzinfo=UTC)
    (participant,) = summary.participants
    assert participant.conversation_participant_arn == "arn:agent:1"
    assert participant.conversation_participant_name == "Ann"
    assert participant.email == "ann@example.com"
    assert participant.unread_messages == 2
    assert participant.joined_dts == datetime(2024, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("event_type", sorted(protocol.PARTICIPANT_EVENT_FIELDS))
def test_sdk_participant_join_and_left_carry_the_participant(event_type: str) -> None:
    """participant join/left built with the SDK expose the participant."""
    field = protocol.PARTICIPANT_EVENT_FIELDS[event_type]
    parsed = parse_frame(sdk_dumps(envelope(event_type=event_type, **{field: PARTICIPANT})))
    assert parsed.payload is None
    assert parsed.participant.conversation_participant_uuid == "p-1"


def test_sdk_queue_status_update_parses_with_the_same_values() -> None:
    """A queue status update built with the SDK gives the same values."""
    status = ConversationWebchatQueueStatus(
        agent_available_count=1,
        agent_count=2,
        agents=[
            ConversationWebchatQueueStatusAgent(
                agent_status="busy",
                conversation_participant_arn="arn:agent:1",
                last_chat_dts="2024-05-01T09:00:00Z",
                next_round_robin=False,
                agent_user_id="u-1",
            )
        ],
        customer_waiting_count=1,
        queue_entries=[QUEUE_ENTRY],
        queue_name="support",
    )
    model = ConversationWebsocketMessage(
        type="event", event_type="queue status update", event_queue_status_update=status
    )
    parsed = parse_frame(sdk_dumps(model))
    payload = parsed.payload
    assert parsed.conversation_uuid is None
    assert (payload.agent_available_count, payload.agent_count) == (1, 2)
    assert payload.customer_waiting_count == 1
    assert payload.agents[0].agent_status == "busy"
    assert payload.agents[0].next_round_robin is False
    assert payload.agents[0].agent_user_id == "u-1"
    assert payload.agents[0].last_chat_dts == datetime(2024, 5, 1, 9, tzinfo=UTC)
    assert payload.queue_entries[0].conversation_webchat_queue_uuid == "q-9"


@pytest.mark.parametrize("event_type", ["engage customer", "queue new member"])
def test_sdk_queue_entry_events_parse_with_the_same_values(event_type: str) -> None:
    """engage customer / queue new member built with the SDK give the queue entry."""
    field = protocol.PAYLOAD_FIELDS[event_type]
    payload = parse_frame(
        sdk_dumps(envelope(event_type=event_type, **{field: QUEUE_ENTRY}))
    ).payload
    assert payload.question == "Order?"
    assert payload.email == "carl@example.com"
    assert payload.join_dts == datetime(2024, 5, 1, 9, 58, tzinfo=UTC)


def test_sdk_read_message_parses_with_the_same_values() -> None:
    """A read message event built with the SDK gives the same values."""
    read = ConversationEventReadMessage(
        conversation_message_uuid="m-9", message_dts="2024-05-01T10:02:00Z", message_epoch=5
    )
    payload = parse_frame(
        sdk_dumps(envelope(event_type="read message", event_read_message=read))
    ).payload
    assert payload.conversation_message_uuid == "m-9"
    assert payload.message_dts == datetime(2024, 5, 1, 10, 2, tzinfo=UTC)
    assert payload.message_epoch == 5


def test_sdk_cart_events_parse_with_the_same_values() -> None:
    """add coupon, add item and webchat context built with the SDK give the same values."""
    coupon = ConversationEventAddCoupon(
        agent_arn="arn:agent:1", agent_name="Ann", coupon_code="TEN"
    )
    item = ConversationEventAddItem(
        agent_arn="arn:agent:1", agent_name="Ann", items=[CartItem(item_id="SKU1", quantity=2.0)]
    )
    context = ConversationEventWebchatContext(cart_id="cart-1", ucacid="u-1", url="https://x/")
    assert (
        parse_frame(
            sdk_dumps(envelope(event_type="add coupon", event_add_coupon=coupon))
        ).payload.coupon_code
        == "TEN"
    )
    added = parse_frame(sdk_dumps(envelope(event_type="add item", event_add_item=item))).payload
    assert added.agent_name == "Ann"
    assert added.items == ({"item_id": "SKU1", "quantity": 2.0},)
    webchat = parse_frame(
        sdk_dumps(envelope(event_type="webchat context", event_webchat_context=context))
    ).payload
    assert (webchat.cart_id, webchat.ucacid, webchat.url) == ("cart-1", "u-1", "https://x/")


def test_sdk_webchat_start_conversation_and_ping_parse() -> None:
    """Payload-less envelopes built with the SDK parse."""
    assert parse_frame(sdk_dumps(envelope(event_type="webchat start conversation"))).payload is None
    assert parse_frame(sdk_dumps(ConversationWebsocketMessage(type="ping"))).type == "ping"


def test_sdk_and_parser_agree_on_a_round_trip(api_client: ApiClient) -> None:
    """A frame the SDK builds, parsed by the SDK again, has what our parser reads."""
    text = sdk_dumps(envelope(event_type="new conversation", event_new_conversation=SUMMARY))
    ours = parse_frame(text)
    theirs = sdk_parse(api_client, text)
    assert theirs.event_new_conversation.conversation_uuid == ours.payload.conversation_uuid
    assert theirs.event_new_conversation.message_count == ours.payload.message_count
    assert (
        theirs.event_new_conversation.participants[0].conversation_participant_arn
        == ours.payload.participants[0].conversation_participant_arn
    )
