"""The conversation WebSocket protocol: envelope parsing and building. Pure: no Django."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from conversations import fastjson


class ProtocolError(ValueError):
    """A frame that does not follow the protocol; the message says exactly why."""


MESSAGE_TYPES: tuple[str, ...] = ("message", "event", "ping", "check queue position")

SEED_EVENT_TYPES: tuple[str, ...] = (
    "queue position",
    "webchat start conversation",
    "conversation closed",
    "new conversation",
    "new message",
    "updated message",
    "queue status update",
    "rrweb",
    "participant update",
)
LATER_EVENT_TYPES: tuple[str, ...] = (
    "participant join",
    "participant left",
    "read message",
    "typing",
    "add coupon",
    "add item",
    "webchat context",
    "engage customer",
    "queue new member",
)
EVENT_TYPES: tuple[str, ...] = SEED_EVENT_TYPES + LATER_EVENT_TYPES

SUMMARY_EVENT_FIELDS: dict[str, str] = {
    "new conversation": "event_new_conversation",
    "conversation closed": "event_conversation_closed",
    "new message": "event_new_message",
    "participant update": "event_participant_update",
    "participant join": "event_participant_join",
    "participant left": "event_participant_left",
}
# The envelope field holding the ConversationParticipant of participant join/left.
PARTICIPANT_EVENT_FIELDS: dict[str, str] = {
    "participant join": "event_participant_join_participant",
    "participant left": "event_participant_left_participant",
}
# Every known event_type with a payload -> the envelope field that holds it.
PAYLOAD_FIELDS: dict[str, str] = {
    **SUMMARY_EVENT_FIELDS,
    "updated message": "event_updated_message",
    "queue position": "event_queue_position",
    "queue status update": "event_queue_status_update",
    "rrweb": "event_rrweb",
    "typing": "event_typing",
    "read message": "event_read_message",
    "add coupon": "event_add_coupon",
    "add item": "event_add_item",
    "webchat context": "event_webchat_context",
    "engage customer": "event_engage_customer",
    "queue new member": "event_queue_new_member",
}
RRWEB_TYPES: tuple[str, ...] = ("init", "events")

# Integers end up in 64-bit database columns; anything wider is not a valid value. The few
# stored in 32-bit columns (counts) are held to that narrower range.
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
# A batch split into more parts than this is refused: parts are bounded by size anyway, and a
# count in the billions would only make a server wait for parts that never come.
MAX_PARTS = 10_000


# Identifiers name rows, URLs and channel groups, so they hold a small safe alphabet and fit
# their database columns (conversations/models.py). Free text (bodies, names) is not checked.
class IdentifierRule(NamedTuple):
    """What an identifier may hold: its alphabet (described for error messages) and length."""

    pattern: re.Pattern
    chars: str
    max_length: int


UUID_RULE = IdentifierRule(
    re.compile(r"[A-Za-z0-9_.:-]+"), "ASCII letters, digits and - _ . :", max_length=100
)
ARN_RULE = IdentifierRule(
    re.compile(r"[A-Za-z0-9_.:/+=,@-]+"),
    "ASCII letters, digits and - _ . : / + = , @",
    max_length=255,
)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A \uD800-\uDFFF escape or a raw surrogate: the only ways a decoded frame can hold a lone one.
# Two patterns, not one alternation: a pattern starting with a literal is searched for fast.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_RAW_SURROGATE = re.compile(r"[\ud800-\udfff]")
_DESCRIBE_LIMIT = 80


# --- Payload models -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversationParticipant:
    """A participant of a conversation."""

    conversation_participant_arn: str | None = None
    conversation_participant_name: str | None = None
    conversation_participant_uuid: str | None = None
    email: str | None = None
    joined_dts: datetime | None = None
    language_iso_code: str | None = None
    last_message_dts: datetime | None = None
    left_dts: datetime | None = None
    profile_image_url: str | None = None
    sms_phone_number: str | None = None
    status: str | None = None
    timezone: str | None = None
    unread_messages: int | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Translation:
    """A translation of a message body."""

    body: str | None = None
    language_iso_code: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class TransportStatus:
    """The delivery status of a message to one participant."""

    conversation_participant_arn: str | None = None
    status: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class ConversationMessage:
    """A message of a conversation (`message`, or the edit in `event_updated_message`)."""

    author_conversation_participant_arn: str | None = None
    author_conversation_participant_name: str | None = None
    body: str | None = None
    client_message_id: str | None = None
    conversation_message_uuid: str = ""
    delay_until_dts: datetime | None = None
    language_iso_code: str | None = None
    media_urls: tuple[str, ...] = ()
    merchant_id: str | None = None
    message_dts: datetime | None = None
    message_epoch: int | None = None
    message_type: str | None = None
    translations: tuple[Translation, ...] = ()
    transport_statuses: tuple[TransportStatus, ...] = ()
    type: str | None = None
    upload_keys: tuple[str, ...] = ()
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """The state of a conversation after an event."""

    closed: bool | None = None
    conversation_arn: str | None = None
    conversation_uuid: str | None = None
    customer_first_message_unresponded_to_dts: datetime | None = None
    last_conversation_message_body: str | None = None
    last_conversation_participant_arn: str | None = None
    last_conversation_participant_name: str | None = None
    last_interactive_message_dts: datetime | None = None
    last_message_dts: datetime | None = None
    medium: str | None = None
    merchant_id: str | None = None
    message_count: int | None = None
    participants: tuple[ConversationParticipant, ...] = ()
    sentiment: dict | None = None
    start_dts: datetime | None = None
    unread_messages: bool | None = None
    visible: bool | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class ConversationEventRRWeb:
    """One rrweb batch, or one part of a batch split over several frames."""

    type: str
    event_index: int
    data: str
    data_part: int = 1
    data_total_parts: int = 1
    data_sha256: str | None = None
    data_total_sha256: str | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def is_multipart(self) -> bool:
        """Return whether this frame is one part of a batch split over several frames."""
        return self.data_total_parts > 1


@dataclass(frozen=True, slots=True)
class ConversationEventTyping:
    """What a participant has typed so far."""

    author_conversation_participant_arn: str | None = None
    author_conversation_participant_name: str | None = None
    value: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class ConversationEventQueuePosition:
    """A customer's place in the webchat queue (-1 when not found)."""

    available: bool | None = None
    position: int | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class QueueAgent:
    """An agent of the webchat queue."""

    agent_status: str | None = None
    conversation_participant_arn: str | None = None
    conversation_participant_name: str | None = None
    last_chat_dts: datetime | None = None
    next_round_robin: bool | None = None
    profile_image_url: str | None = None
    agent_user_id: str | None = None
    custom_status_name: str | None = None
    custom_status_uuid: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A customer waiting in the webchat queue (ConversationWebchatQueueStatusQueueEntry)."""

    conversation_participant_arn: str | None = None
    conversation_participant_name: str | None = None
    conversation_webchat_queue_uuid: str | None = None
    email: str | None = None
    join_dts: datetime | None = None
    participant_language_iso_code: str | None = None
    question: str | None = None
    queue_name: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class ConversationWebchatQueueStatus:
    """The state of a whole webchat queue."""

    agent_available_count: int | None = None
    agent_busy_count: int | None = None
    agent_count: int | None = None
    agent_unavailable_count: int | None = None
    agents: tuple[QueueAgent, ...] = ()
    customer_abandon_count: int | None = None
    customer_active_count: int | None = None
    customer_average_abandon_time_seconds: int | None = None
    customer_average_chat_time_seconds: int | None = None
    customer_average_hold_time_seconds: int | None = None
    customer_chat_count: int | None = None
    customer_waiting_count: int | None = None
    customer_waiting_join_dts: datetime | None = None
    queue_entries: tuple[QueueEntry, ...] = ()
    queue_name: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class ReadMessage:
    """A participant read a message."""

    conversation_message_uuid: str = ""
    message_dts: datetime | None = None
    message_epoch: int | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class AddCoupon:
    """An agent added a coupon to the customer's cart."""

    agent_arn: str | None = None
    agent_name: str | None = None
    coupon_code: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class AddItem:
    """An agent added items (CartItem objects, kept as dicts) to the customer's cart."""

    agent_arn: str | None = None
    agent_name: str | None = None
    items: tuple[dict, ...] = ()
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class WebchatContext:
    """The page and cart the webchat customer is on."""

    cart_id: str | None = None
    ucacid: str | None = None
    url: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One parsed frame: a ConversationWebsocketMessage."""

    type: str
    event_type: str | None = None
    conversation_uuid: str | None = None
    conversation_arn: str | None = None
    message: ConversationMessage | None = None
    payload: object | None = None
    participant: ConversationParticipant | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def is_known_event(self) -> bool:
        """Return whether this is an event whose event_type this protocol knows."""
        return self.type == "event" and self.event_type in _EVENT_TYPE_SET


_EVENT_TYPE_SET = frozenset(EVENT_TYPES)


# --- Field readers ----------------------------------------------------------------------------
# Each reader takes (object, key, path prefix) and returns the typed value, None when the key is
# absent or null. Paths are only formatted on the error path, to keep the common case cheap.


def _describe(value: object) -> str:
    """Describe a value for an error message: JSON type for containers, short repr otherwise."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, int):
        if value.bit_length() > 128:
            return f"an integer of {value.bit_length()} bits"
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        text = value if len(value) <= _DESCRIBE_LIMIT else value[:_DESCRIBE_LIMIT] + "..."
        return repr(text)  # repr escapes lone surrogates, so the message stays encodable
    return type(value).__name__


def json_type(value: object) -> str:
    """Name the JSON type of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _path(prefix: str, key: str) -> str:
    """Join a dotted field path."""
    return f"{prefix}.{key}" if prefix else key


def _must(prefix: str, key: str, kind: str, value: object) -> ProtocolError:
    """Build the error for a field of the wrong kind."""
    return ProtocolError(f"{_path(prefix, key)} must be {kind}, got {_describe(value)}")


def _as_int(value: object) -> int | None:
    """Return value as an int when it is a JSON integer (or integral float) in range, else None."""
    return _int_in(value, _INT_MIN, _INT_MAX)


def _int_in(value: object, low: int, high: int) -> int | None:
    """Return value as an int when it is a JSON integer (or integral float) in [low, high]."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    else:
        return None
    return result if low <= result <= high else None


def _int_error(path: str, value: object, low: int, high: int) -> ProtocolError:
    """Build the error for an integer field: the wrong type, or out of its range."""
    integral = isinstance(value, float) and value.is_integer()
    if not integral and (isinstance(value, bool) or not isinstance(value, int)):
        return ProtocolError(f"{path} must be an integer, got {_describe(value)}")
    return ProtocolError(f"{path} must be an integer from {low} to {high}, got {_describe(value)}")


def _int_reader(low: int, high: int) -> Callable[[dict, str, str], int | None]:
    """Make a reader of an optional integer within [low, high]."""

    def read(obj: dict, key: str, prefix: str) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        result = _int_in(value, low, high)
        if result is None:
            raise _int_error(_path(prefix, key), value, low, high)
        return result

    return read


def _bad_character(text: str, allowed: re.Pattern) -> str:
    """Describe the first character of text outside `allowed`, and where it is."""
    position, char = next((i, c) for i, c in enumerate(text) if not allowed.fullmatch(c))
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        kind = "a control character"
    elif 0xD800 <= code <= 0xDFFF:
        kind = "an unpaired surrogate"
    else:
        kind = "a character"
    return f"{kind} {char!r} at position {position}"


def check_identifier(value: str, *, path: str, rule: IdentifierRule = UUID_RULE) -> str:
    """Return value if `rule` allows it (a uuid by default); else raise ProtocolError."""
    if not value:
        raise ProtocolError(f"{path} must not be empty")
    if len(value) > rule.max_length:
        raise ProtocolError(
            f"{path} must be at most {rule.max_length} characters, "
            f"got {len(value)}: {_describe(value)}"
        )
    if not rule.pattern.fullmatch(value):
        raise ProtocolError(
            f"{path} must hold only {rule.chars}; "
            f"{_bad_character(value, rule.pattern)} in {_describe(value)}"
        )
    return value


def _read_uuid(obj: dict, key: str, prefix: str) -> str | None:
    """Read an optional uuid: a string of the safe uuid alphabet ("" counts as absent)."""
    value = _read_str(obj, key, prefix)
    if value:
        check_identifier(value, path=_path(prefix, key))
    return value


def _read_arn(obj: dict, key: str, prefix: str) -> str | None:
    """Read an optional ARN: a string of the safe ARN alphabet ("" counts as absent)."""
    value = _read_str(obj, key, prefix)
    if value:
        check_identifier(value, path=_path(prefix, key), rule=ARN_RULE)
    return value


def _read_str(obj: dict, key: str, prefix: str) -> str | None:
    """Read an optional string."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _must(prefix, key, "a string", value)


def _read_id(obj: dict, key: str, prefix: str) -> str:
    """Read a required uuid."""
    value = obj.get(key)
    if isinstance(value, str) and value:
        return check_identifier(value, path=_path(prefix, key))
    if value is None:
        raise ProtocolError(f"{_path(prefix, key)} is required")
    raise _must(prefix, key, "a non-empty string", value)


# Optional integers: any 64-bit one, or one that a 32-bit column stores.
_read_int = _int_reader(_INT_MIN, _INT_MAX)
_read_int32 = _int_reader(_INT32_MIN, _INT32_MAX)


def _read_bool(obj: dict, key: str, prefix: str) -> bool | None:
    """Read an optional boolean."""
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _must(prefix, key, "a boolean", value)


def _read_dts(obj: dict, key: str, prefix: str) -> datetime | None:
    """Read an optional ISO 8601 date-time."""
    value = obj.get(key)
    if value is None:
        return None
    return parse_dts(value, field=_path(prefix, key))


def _read_object(obj: dict, key: str, prefix: str) -> dict | None:
    """Read an optional JSON object, kept as is."""
    value = obj.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise _must(prefix, key, "an object", value)


def _read_list(obj: dict, key: str, prefix: str) -> list:
    """Read an optional JSON array; absent is empty."""
    value = obj.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise _must(prefix, key, "an array", value)


def _read_str_list(obj: dict, key: str, prefix: str) -> tuple[str, ...]:
    """Read an optional array of strings."""
    items = _read_list(obj, key, prefix)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise _must(prefix, f"{key}[{index}]", "a string", item)
    return tuple(items)


def _read_object_list(obj: dict, key: str, prefix: str) -> tuple[dict, ...]:
    """Read an optional array of objects, kept as dicts."""
    items = _read_list(obj, key, prefix)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _must(prefix, f"{key}[{index}]", "an object", item)
    return tuple(items)


def _list_of(parse: Callable[[Any, str], Any]) -> Callable[[dict, str, str], tuple]:
    """Make a reader of an optional array of one payload model."""

    def read(obj: dict, key: str, prefix: str) -> tuple:
        items = _read_list(obj, key, prefix)
        return tuple(
            parse(item, _path(prefix, f"{key}[{index}]")) for index, item in enumerate(items)
        )

    return read


Reader = Callable[[dict, str, str], Any]


def _model(cls: type, spec: tuple[tuple[str, Reader], ...]) -> Callable[[Any, str], Any]:
    """Make a parser of one payload model from its (field, reader) table."""

    def parse(obj: Any, path: str) -> Any:
        if not isinstance(obj, dict):
            raise ProtocolError(f"{path} must be an object, got {_describe(obj)}")
        return cls(*[read(obj, key, path) for key, read in spec], raw=obj)

    return parse


# --- Payload parsers ----------------------------------------------------------------------------

_parse_participant = _model(
    ConversationParticipant,
    (
        ("conversation_participant_arn", _read_arn),
        ("conversation_participant_name", _read_str),
        ("conversation_participant_uuid", _read_uuid),
        ("email", _read_str),
        ("joined_dts", _read_dts),
        ("language_iso_code", _read_str),
        ("last_message_dts", _read_dts),
        ("left_dts", _read_dts),
        ("profile_image_url", _read_str),
        ("sms_phone_number", _read_str),
        ("status", _read_str),
        ("timezone", _read_str),
        ("unread_messages", _read_int32),
    ),
)
_parse_translation = _model(Translation, (("body", _read_str), ("language_iso_code", _read_str)))
_parse_transport_status = _model(
    TransportStatus, (("conversation_participant_arn", _read_arn), ("status", _read_str))
)
_parse_message = _model(
    ConversationMessage,
    (
        ("author_conversation_participant_arn", _read_arn),
        ("author_conversation_participant_name", _read_str),
        ("body", _read_str),
        ("client_message_id", _read_str),
        ("conversation_message_uuid", _read_id),
        ("delay_until_dts", _read_dts),
        ("language_iso_code", _read_str),
        ("media_urls", _read_str_list),
        ("merchant_id", _read_str),
        ("message_dts", _read_dts),
        ("message_epoch", _read_int),
        ("message_type", _read_str),
        ("translations", _list_of(_parse_translation)),
        ("transport_statuses", _list_of(_parse_transport_status)),
        ("type", _read_str),
        ("upload_keys", _read_str_list),
    ),
)
_parse_summary = _model(
    ConversationSummary,
    (
        ("closed", _read_bool),
        ("conversation_arn", _read_arn),
        ("conversation_uuid", _read_uuid),
        ("customer_first_message_unresponded_to_dts", _read_dts),
        ("last_conversation_message_body", _read_str),
        ("last_conversation_participant_arn", _read_arn),
        ("last_conversation_participant_name", _read_str),
        ("last_interactive_message_dts", _read_dts),
        ("last_message_dts", _read_dts),
        ("medium", _read_str),
        ("merchant_id", _read_str),
        ("message_count", _read_int32),
        ("participants", _list_of(_parse_participant)),
        ("sentiment", _read_object),
        ("start_dts", _read_dts),
        ("unread_messages", _read_bool),
        ("visible", _read_bool),
    ),
)
_parse_typing = _model(
    ConversationEventTyping,
    (
        ("author_conversation_participant_arn", _read_arn),
        ("author_conversation_participant_name", _read_str),
        ("value", _read_str),
    ),
)
_parse_queue_position = _model(
    ConversationEventQueuePosition, (("available", _read_bool), ("position", _read_int))
)
_parse_queue_agent = _model(
    QueueAgent,
    (
        ("agent_status", _read_str),
        ("conversation_participant_arn", _read_arn),
        ("conversation_participant_name", _read_str),
        ("last_chat_dts", _read_dts),
        ("next_round_robin", _read_bool),
        ("profile_image_url", _read_str),
        ("agent_user_id", _read_str),
        ("custom_status_name", _read_str),
        ("custom_status_uuid", _read_uuid),
    ),
)
_parse_queue_entry = _model(
    QueueEntry,
    (
        ("conversation_participant_arn", _read_arn),
        ("conversation_participant_name", _read_str),
        ("conversation_webchat_queue_uuid", _read_uuid),
        ("email", _read_str),
        ("join_dts", _read_dts),
        ("participant_language_iso_code", _read_str),
        ("question", _read_str),
        ("queue_name", _read_str),
    ),
)
_parse_queue_status = _model(
    ConversationWebchatQueueStatus,
    (
        ("agent_available_count", _read_int32),
        ("agent_busy_count", _read_int),
        ("agent_count", _read_int),
        ("agent_unavailable_count", _read_int),
        ("agents", _list_of(_parse_queue_agent)),
        ("customer_abandon_count", _read_int),
        ("customer_active_count", _read_int),
        ("customer_average_abandon_time_seconds", _read_int),
        ("customer_average_chat_time_seconds", _read_int),
        ("customer_average_hold_time_seconds", _read_int),
        ("customer_chat_count", _read_int),
        ("customer_waiting_count", _read_int),
        ("customer_waiting_join_dts", _read_dts),
        ("queue_entries", _list_of(_parse_queue_entry)),
        ("queue_name", _read_str),
    ),
)
_parse_read_message = _model(
    ReadMessage,
    (
        ("conversation_message_uuid", _read_id),
        ("message_dts", _read_dts),
        ("message_epoch", _read_int),
    ),
)
_parse_add_coupon = _model(
    AddCoupon, (("agent_arn", _read_arn), ("agent_name", _read_str), ("coupon_code", _read_str))
)
_parse_add_item = _model(
    AddItem, (("agent_arn", _read_arn), ("agent_name", _read_str), ("items", _read_object_list))
)
_parse_webchat_context = _model(
    WebchatContext, (("cart_id", _read_str), ("ucacid", _read_str), ("url", _read_str))
)


def _sha256_hex(text: str, path: str) -> str:
    """Return the lowercase hex SHA-256 of text's UTF-8 bytes."""
    try:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    except UnicodeEncodeError as err:
        raise ProtocolError(f"{path} is not valid Unicode text: {err.reason}") from None


def _read_checksum(obj: dict, key: str, prefix: str) -> str | None:
    """Read an optional lowercase hex SHA-256."""
    value = obj.get(key)
    if value is None or (isinstance(value, str) and _SHA256_HEX.fullmatch(value)):
        return value
    raise _must(prefix, key, "64 lowercase hex characters", value)


def _parse_rrweb(obj: Any, path: str) -> ConversationEventRRWeb:
    """Parse event_rrweb, enforcing the part and checksum rules."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"{path} must be an object, got {_describe(obj)}")
    kind = obj.get("type")
    if kind not in RRWEB_TYPES:
        raise _must(path, "type", "'init' or 'events'", kind)
    raw_index = obj.get("event_index")
    event_index = _int_in(raw_index, 0, _INT_MAX)
    if event_index is None:
        raise _must(path, "event_index", f"an integer from 0 to {_INT_MAX}", raw_index)
    data = obj.get("data")
    if not isinstance(data, str):
        raise _must(path, "data", "a string", data)
    raw_total = obj.get("data_total_parts")
    total = 1 if raw_total is None else _int_in(raw_total, 1, MAX_PARTS)
    if total is None:
        raise _must(path, "data_total_parts", f"an integer from 1 to {MAX_PARTS}", raw_total)
    raw_part = obj.get("data_part")
    part = 1 if raw_part is None else _int_in(raw_part, 1, total)
    if part is None:
        raise _must(path, "data_part", "an integer between 1 and data_total_parts", raw_part)
    data_sha256 = _read_checksum(obj, "data_sha256", path)
    data_total_sha256 = _read_checksum(obj, "data_total_sha256", path)
    if total > 1 and data_total_sha256 is None:
        raise ProtocolError(f"{path}.data_total_sha256 is required when data_total_parts > 1")
    checked = ((data_sha256, "data_sha256"),)
    if total == 1:
        checked += ((data_total_sha256, "data_total_sha256"),)
    actual = None
    for given, key in checked:
        if given is None:
            continue
        if actual is None:
            actual = _sha256_hex(data, f"{path}.data")
        if given != actual:
            raise ProtocolError(f"{path}.{key} does not match data: expected {actual}, got {given}")
    return ConversationEventRRWeb(
        kind, event_index, data, part, total, data_sha256, data_total_sha256, raw=obj
    )


# event_type -> parser of its payload field; summary and participant events are handled apart.
_PAYLOAD_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "updated message": _parse_message,
    "queue position": _parse_queue_position,
    "queue status update": _parse_queue_status,
    "rrweb": _parse_rrweb,
    "typing": _parse_typing,
    "read message": _parse_read_message,
    "add coupon": _parse_add_coupon,
    "add item": _parse_add_item,
    "webchat context": _parse_webchat_context,
    "engage customer": _parse_queue_entry,
    "queue new member": _parse_queue_entry,
}


# --- Public parsing ---------------------------------------------------------------------------


def parse_dts(value: object, *, field: str) -> datetime:
    """Parse an ISO 8601 date-time into an aware UTC datetime (no zone means UTC)."""
    if isinstance(value, str) and ("T" in value or "t" in value or " " in value):
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise ProtocolError(f"{field} must be an ISO 8601 date-time, got {_describe(value)}")


def parse_frame(text: str | bytes, *, prepare: Callable[[dict], None] | None = None) -> Envelope:
    """Parse the JSON text of one WebSocket frame into an Envelope.

    `prepare`, if given, may change the decoded JSON object in place before it is parsed.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ProtocolError(f"a frame must be UTF-8 text: {err.reason}") from None
    if not isinstance(text, str):
        raise ProtocolError(f"a frame must be text, got {type(text).__name__}")
    obj = fastjson.loads(text)  # what orjson parses holds no lone surrogate
    if obj is fastjson.MISS:
        obj = _loads_checked(text)
    if not isinstance(obj, dict):
        raise ProtocolError(f"a frame must be a JSON object, got {json_type(obj)}")
    if prepare is not None:
        prepare(obj)
    return parse_envelope(obj)


def _loads_checked(text: str) -> object:
    """Parse with the standard library, saying why a text is not JSON the protocol takes."""
    try:
        obj = _DECODER.decode(text)
    except ProtocolError:
        raise
    except json.JSONDecodeError as err:
        raise ProtocolError(f"invalid JSON: {err}") from None
    except RecursionError:
        raise ProtocolError("invalid JSON: nested too deeply") from None
    except ValueError as err:  # e.g. an integer literal longer than Python converts
        raise ProtocolError(f"invalid JSON: {err}") from None
    if ("\\u" in text and _ESCAPED_SURROGATE.search(text)) or (
        not text.isascii() and _RAW_SURROGATE.search(text)
    ):
        _reject_lone_surrogates(obj)
    return obj


def _reject_constant(name: str) -> float:
    """Refuse NaN and Infinity, which are not JSON."""
    raise ProtocolError(f"invalid JSON: {name} is not a JSON value")


def _parse_float(literal: str) -> float:
    """Parse a JSON number, refusing one too large for a float (it would become Infinity)."""
    value = float(literal)
    if value in (math.inf, -math.inf):
        raise ProtocolError(f"invalid JSON: number {literal[:_DESCRIBE_LIMIT]} is out of range")
    return value


def _reject_lone_surrogates(obj: dict) -> None:
    """Refuse a frame whose strings cannot be encoded as UTF-8 (an unpaired surrogate)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("invalid JSON: a string holds an unpaired UTF-16 surrogate") from None
    except (RecursionError, ValueError):
        raise ProtocolError("invalid JSON: nested too deeply") from None


# Built once: json.loads with hooks would build a new decoder for every frame.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_parse_float)


def parse_envelope(obj: object) -> Envelope:
    """Parse a decoded JSON value into an Envelope."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"a frame must be a JSON object, got {json_type(obj)}")
    try:
        return _parse_envelope(obj)
    except RecursionError:
        raise ProtocolError("frame is nested too deeply") from None


def _parse_envelope(obj: dict) -> Envelope:
    """Parse an envelope object (type already known to be a dict)."""
    kind = obj.get("type")
    if kind is None:
        raise ProtocolError("type is required")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        choices = ", ".join(f"'{t}'" for t in MESSAGE_TYPES)
        raise ProtocolError(f"type must be one of {choices}, got {_describe(kind)}")
    event_type = obj.get("event_type")
    if event_type is not None and not isinstance(event_type, str):
        raise _must("", "event_type", "a string", event_type)
    conversation_uuid = obj.get("conversation_uuid")
    if conversation_uuid is not None:
        if not (isinstance(conversation_uuid, str) and conversation_uuid):
            raise _must("", "conversation_uuid", "a non-empty string", conversation_uuid)
        check_identifier(conversation_uuid, path="conversation_uuid")
    conversation_arn = _read_arn(obj, "conversation_arn", "")

    message = payload = participant = None
    needs_conversation = kind != "ping"
    if kind == "message":
        if obj.get("message") is None:
            raise ProtocolError("message is required when type is 'message'")
        message = _parse_message(obj["message"], "message")
    elif kind == "event":
        if event_type is None:
            raise ProtocolError("event_type is required when type is 'event'")
        if event_type not in _EVENT_TYPE_SET or event_type == "queue status update":
            needs_conversation = False
        if event_type in SUMMARY_EVENT_FIELDS:
            payload, participant = _parse_summary_event(obj, event_type)
            if conversation_uuid is None and payload is not None:
                conversation_uuid = payload.conversation_uuid or None
        elif event_type in _PAYLOAD_PARSERS:
            key = PAYLOAD_FIELDS[event_type]
            if obj.get(key) is None:
                raise ProtocolError(f"{key} is required for event_type '{event_type}'")
            payload = _PAYLOAD_PARSERS[event_type](obj[key], key)
    if needs_conversation and conversation_uuid is None:
        detail = f"event_type '{event_type}'" if kind == "event" else f"type '{kind}'"
        raise ProtocolError(f"conversation_uuid is required for {detail}")
    return Envelope(
        kind, event_type, conversation_uuid, conversation_arn, message, payload, participant, obj
    )


def _parse_summary_event(
    obj: dict, event_type: str
) -> tuple[ConversationSummary | None, ConversationParticipant | None]:
    """Parse the summary (and for join/left the participant) of a summary event."""
    key = SUMMARY_EVENT_FIELDS[event_type]
    participant_key = PARTICIPANT_EVENT_FIELDS.get(event_type)
    summary = participant = None
    if obj.get(key) is not None:
        summary = _parse_summary(obj[key], key)
        envelope_uuid = obj.get("conversation_uuid")
        if (
            envelope_uuid
            and summary.conversation_uuid
            and envelope_uuid != summary.conversation_uuid
        ):
            raise ProtocolError(
                f"{key}.conversation_uuid {_describe(summary.conversation_uuid)} does not match "
                f"conversation_uuid {_describe(envelope_uuid)}"
            )
    if participant_key is not None and obj.get(participant_key) is not None:
        participant = _parse_participant(obj[participant_key], participant_key)
    if summary is None and participant is None:
        if participant_key is None:
            raise ProtocolError(f"{key} is required for event_type '{event_type}'")
        raise ProtocolError(f"{key} or {participant_key} is required for event_type '{event_type}'")
    return summary, participant


# --- Building -----------------------------------------------------------------------------------


def build_ping() -> dict:
    """Build the answer to a ping: every frame sent before it is stored."""
    return {"type": "ping"}


def build_queue_position(*, conversation_uuid: str, position: int, available: bool) -> dict:
    """Build the answer to `check queue position`."""
    if not isinstance(conversation_uuid, str) or not conversation_uuid:
        raise _must("", "conversation_uuid", "a non-empty string", conversation_uuid)
    check_identifier(conversation_uuid, path="conversation_uuid")
    if _as_int(position) is None or isinstance(position, float):
        raise _must("", "position", "an integer", position)
    if not isinstance(available, bool):
        raise _must("", "available", "a boolean", available)
    return {
        "type": "event",
        "event_type": "queue position",
        "conversation_uuid": conversation_uuid,
        "event_queue_position": {"available": available, "position": position},
    }


def dumps(envelope: dict) -> str:
    """Serialize an envelope the server sends as compact JSON text."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
