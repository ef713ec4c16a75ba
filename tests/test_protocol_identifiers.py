"""Identifiers and integers: what the protocol lets through to rows, URLs and channel groups."""

import json
from collections.abc import Callable

import pytest

from conversations import protocol
from conversations.protocol import ProtocolError, parse_envelope, parse_frame

CONV = "c0a80001-0000-4000-8000-000000000001"
UUID, ARN = "uuid", "arn"


def with_message(key: str) -> Callable[[object], dict]:
    def build(value: object) -> dict:
        message = {"conversation_message_uuid": "m-1", key: value}
        return {"type": "message", "conversation_uuid": CONV, "message": message}

    return build


def with_event(event_type: str, field: str, payload: Callable[[object], dict]) -> Callable:
    def build(value: object) -> dict:
        frame = {"type": "event", "event_type": event_type, field: payload(value)}
        if event_type != "queue status update":
            frame["conversation_uuid"] = CONV
        return frame

    return build


def with_summary(key: str) -> Callable[[object], dict]:
    def build(value: object) -> dict:
        # No envelope uuid: the summary's own is the conversation's.
        summary = {"conversation_uuid": CONV, key: value}
        return {
            "type": "event",
            "event_type": "new conversation",
            "event_new_conversation": summary,
        }

    return build


# (path named in the reason, kind, frame with the value at that path)
IDENTIFIERS: list[tuple[str, str, Callable[[object], dict]]] = [
    ("conversation_uuid", UUID, lambda v: {"type": "check queue position", "conversation_uuid": v}),
    ("conversation_arn", ARN, lambda v: {"type": "ping", "conversation_arn": v}),
    ("message.conversation_message_uuid", UUID, with_message("conversation_message_uuid")),
    (
        "message.author_conversation_participant_arn",
        ARN,
        with_message("author_conversation_participant_arn"),
    ),
    (
        "message.transport_statuses[0].conversation_participant_arn",
        ARN,
        lambda v: with_message("transport_statuses")([{"conversation_participant_arn": v}]),
    ),
    (
        "event_updated_message.conversation_message_uuid",
        UUID,
        with_event(
            "updated message", "event_updated_message", lambda v: {"conversation_message_uuid": v}
        ),
    ),
    (
        "event_read_message.conversation_message_uuid",
        UUID,
        with_event(
            "read message", "event_read_message", lambda v: {"conversation_message_uuid": v}
        ),
    ),
    (
        "event_new_conversation.conversation_uuid",
        UUID,
        lambda v: {
            "type": "event",
            "event_type": "new conversation",
            "event_new_conversation": {"conversation_uuid": v},
        },
    ),
    ("event_new_conversation.conversation_arn", ARN, with_summary("conversation_arn")),
    (
        "event_new_conversation.last_conversation_participant_arn",
        ARN,
        with_summary("last_conversation_participant_arn"),
    ),
    (
        "event_new_conversation.participants[0].conversation_participant_arn",
        ARN,
        lambda v: with_summary("participants")([{"conversation_participant_arn": v}]),
    ),
    (
        "event_new_conversation.participants[0].conversation_participant_uuid",
        UUID,
        lambda v: with_summary("participants")([{"conversation_participant_uuid": v}]),
    ),
    (
        "event_participant_join_participant.conversation_participant_arn",
        ARN,
        with_event(
            "participant join",
            "event_participant_join_participant",
            lambda v: {"conversation_participant_arn": v},
        ),
    ),
    (
        "event_typing.author_conversation_participant_arn",
        ARN,
        with_event("typing", "event_typing", lambda v: {"author_conversation_participant_arn": v}),
    ),
    (
        "event_queue_status_update.agents[0].conversation_participant_arn",
        ARN,
        with_event(
            "queue status update",
            "event_queue_status_update",
            lambda v: {"agents": [{"conversation_participant_arn": v}]},
        ),
    ),
    (
        "event_queue_status_update.agents[0].custom_status_uuid",
        UUID,
        with_event(
            "queue status update",
            "event_queue_status_update",
            lambda v: {"agents": [{"custom_status_uuid": v}]},
        ),
    ),
    (
        "event_queue_status_update.queue_entries[0].conversation_webchat_queue_uuid",
        UUID,
        with_event(
            "queue status update",
            "event_queue_status_update",
            lambda v: {"queue_entries": [{"conversation_webchat_queue_uuid": v}]},
        ),
    ),
    (
        "event_engage_customer.conversation_participant_arn",
        ARN,
        with_event(
            "engage customer",
            "event_engage_customer",
            lambda v: {"conversation_participant_arn": v},
        ),
    ),
    (
        "event_queue_new_member.conversation_webchat_queue_uuid",
        UUID,
        with_event(
            "queue new member",
            "event_queue_new_member",
            lambda v: {"conversation_webchat_queue_uuid": v},
        ),
    ),
    (
        "event_add_coupon.agent_arn",
        ARN,
        with_event("add coupon", "event_add_coupon", lambda v: {"agent_arn": v}),
    ),
    (
        "event_add_item.agent_arn",
        ARN,
        with_event("add item", "event_add_item", lambda v: {"agent_arn": v}),
    ),
]
LIMIT = {UUID: protocol.UUID_RULE.max_length, ARN: protocol.ARN_RULE.max_length}
CHARS = {UUID: protocol.UUID_RULE.chars, ARN: protocol.ARN_RULE.chars}

GOOD = {
    UUID: [
        CONV,
        "m-1",
        "urn:uuid:c0a80001-0000-4000-8000-000000000001",
        "CONV_2026.11.25",
        "x" * protocol.UUID_RULE.max_length,
    ],
    ARN: [
        "arn:participant:ada-shopper",
        "arn:aws:iam::123456789012:user/division_abc/subdivision_xyz/Bob",
        "arn:aws:iam::123456789012:role/S3+Access=read,write@team",
        "arn:aws:connect:us-east-1:123456789012:instance/0a1b2c3d/agent/e4f5",
        "a" * protocol.ARN_RULE.max_length,
    ],
}
# (bad value, kinds it is bad for, what the reason says about it)
BAD_CHARACTERS = [
    ("a\x00b", (UUID, ARN), "a control character '\\x00' at position 1"),
    ("\x1b[31mred", (UUID, ARN), "a control character '\\x1b' at position 0"),
    ("line\nbreak", (UUID, ARN), "a control character '\\n' at position 4"),
    ("del\x7f", (UUID, ARN), "a control character '\\x7f' at position 3"),
    ("c1\x85", (UUID, ARN), "a control character '\\x85' at position 2"),
    ("c1\x9f", (UUID, ARN), "a control character '\\x9f' at position 2"),
    ("lone\ud800", (UUID, ARN), "an unpaired surrogate '\\ud800' at position 4"),
    ("a b", (UUID, ARN), "a character ' ' at position 1"),
    ("<script>", (UUID, ARN), "a character '<' at position 0"),
    ("caf\u00e9", (UUID, ARN), "a character '\u00e9' at position 3"),
    ("\u0430bc", (UUID, ARN), "a character '\u0430' at position 0"),  # Cyrillic a
    ("emoji\U0001f600", (UUID, ARN), "a character '\U0001f600' at position 5"),
    ("%2F", (UUID, ARN), "a character '%' at position 0"),
    ('quote"d', (UUID, ARN), "a character '\"' at position 5"),
    ("back\\slash", (UUID, ARN), "a character '\\\\' at position 4"),
    ("q?x=1", (UUID, ARN), "a character '?' at position 1"),
    ("frag#1", (UUID, ARN), "a character '#' at position 4"),
    ("a/b", (UUID,), "a character '/' at position 1"),
    ("a+b=c,d@e", (UUID,), "a character '+' at position 1"),
]


def reason_of(frame: dict) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_envelope(frame)
    return str(info.value)


@pytest.mark.parametrize(("path", "kind", "build"), IDENTIFIERS, ids=[i[0] for i in IDENTIFIERS])
def test_identifier_in_its_documented_alphabet_and_length_is_accepted(path, kind, build) -> None:
    for value in GOOD[kind]:
        parsed = parse_frame(json.dumps(build(value)))
        assert value in strings(parsed.raw)


@pytest.mark.parametrize(("path", "kind", "build"), IDENTIFIERS, ids=[i[0] for i in IDENTIFIERS])
@pytest.mark.parametrize(
    ("value", "bad_for", "detail"), BAD_CHARACTERS, ids=[repr(b[0]) for b in BAD_CHARACTERS]
)
def test_identifier_with_a_character_outside_its_alphabet_is_refused_naming_field_and_character(
    path, kind, build, value, bad_for, detail
) -> None:
    if kind not in bad_for:
        parse_envelope(build(value))
        return
    assert reason_of(build(value)) == (
        f"{path} must hold only {CHARS[kind]}; {detail} in {value!r}"
    )


@pytest.mark.parametrize(("path", "kind", "build"), IDENTIFIERS, ids=[i[0] for i in IDENTIFIERS])
def test_identifier_longer_than_its_column_is_refused_with_a_short_reason(
    path, kind, build
) -> None:
    limit = LIMIT[kind]
    assert reason_of(build("a" * (limit + 1))) == (
        f"{path} must be at most {limit} characters, got {limit + 1}: '{'a' * 80}...'"
    )
    huge = reason_of(build("\x00" * 10_000))
    assert huge.startswith(f"{path} must be at most {limit} characters, got 10000: ")
    assert len(huge) < 500


def test_a_10_kb_identifier_of_bad_characters_within_the_limit_gives_a_short_reason() -> None:
    value = "\x00" * 100
    reason = reason_of({"type": "check queue position", "conversation_uuid": value})
    assert reason.startswith("conversation_uuid must hold only")
    assert len(reason) < 500


def test_identifier_checks_apply_to_frame_text_as_well() -> None:
    text = json.dumps({"type": "check queue position", "conversation_uuid": "a\u0000b"})
    with pytest.raises(ProtocolError, match=r"conversation_uuid .* control character '\\x00'"):
        parse_frame(text)


@pytest.mark.parametrize(
    "build",
    [
        lambda v: {"type": "ping", "conversation_arn": v},
        with_message("author_conversation_participant_arn"),
        with_summary("last_conversation_participant_arn"),
        lambda v: with_summary("participants")([{"conversation_participant_uuid": v}]),
    ],
)
def test_an_empty_optional_identifier_counts_as_absent(build) -> None:
    parse_envelope(build(""))


FREE_TEXT = [
    with_message("body"),
    with_message("author_conversation_participant_name"),
    with_message("client_message_id"),
    with_summary("last_conversation_message_body"),
    with_event("typing", "event_typing", lambda v: {"value": v}),
    with_event("add coupon", "event_add_coupon", lambda v: {"coupon_code": v}),
]


@pytest.mark.parametrize("build", FREE_TEXT)
@pytest.mark.parametrize("text", ["nul \x00 inside", "<script>alert(1)</script>", "\x1b\x7f\x85"])
def test_free_text_may_hold_anything_even_nul(build, text) -> None:
    parsed = parse_frame(json.dumps(build(text)))
    assert text in strings(parsed.raw)


def strings(value: object) -> list[str]:
    """Every string value inside a decoded JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return []


# --- Integers ---------------------------------------------------------------------------------

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)


def rrweb(**fields: object) -> dict:
    payload = {"type": "events", "event_index": 0, "data": "[]", **fields}
    payload = {k: v for k, v in payload.items() if v is not ...}
    return {
        "type": "event",
        "event_type": "rrweb",
        "conversation_uuid": CONV,
        "event_rrweb": payload,
    }


# (path, frame with the value there, lowest and highest accepted)
INTEGERS = [
    ("message.message_epoch", with_message("message_epoch"), INT64),
    (
        "event_read_message.message_epoch",
        with_event(
            "read message",
            "event_read_message",
            lambda v: {"conversation_message_uuid": "m", "message_epoch": v},
        ),
        INT64,
    ),
    (
        "event_queue_position.position",
        with_event("queue position", "event_queue_position", lambda v: {"position": v}),
        INT64,
    ),
    (
        "event_queue_status_update.customer_waiting_count",
        with_event(
            "queue status update",
            "event_queue_status_update",
            lambda v: {"customer_waiting_count": v},
        ),
        INT64,
    ),
    # Stored in 32-bit columns.
    ("event_new_conversation.message_count", with_summary("message_count"), INT32),
    (
        "event_new_conversation.participants[0].unread_messages",
        lambda v: with_summary("participants")([{"unread_messages": v}]),
        INT32,
    ),
    (
        "event_queue_status_update.agent_available_count",
        with_event(
            "queue status update",
            "event_queue_status_update",
            lambda v: {"agent_available_count": v},
        ),
        INT32,
    ),
]


@pytest.mark.parametrize(("path", "build", "bounds"), INTEGERS, ids=[i[0] for i in INTEGERS])
def test_integer_at_the_edges_of_its_column_is_accepted_and_beyond_them_refused(
    path, build, bounds
) -> None:
    low, high = bounds
    for value in (low, high, 0):
        parse_frame(json.dumps(build(value)))
    for value in (low - 1, high + 1, 2**64, -(2**200), 1e300):
        reason = reason_of(build(value))
        assert reason.startswith(f"{path} must be an integer from {low} to {high}, got ")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"event_index": 2**63},
            f"event_rrweb.event_index must be an integer from 0 to {2**63 - 1}",
        ),
        ({"event_index": -1}, f"event_rrweb.event_index must be an integer from 0 to {2**63 - 1}"),
        ({"event_index": ...}, f"event_rrweb.event_index must be an integer from 0 to {2**63 - 1}"),
        (
            {"data_total_parts": 10_001, "data_total_sha256": "a" * 64},
            "event_rrweb.data_total_parts must be an integer from 1 to 10000, got 10001",
        ),
        (
            {"data_total_parts": 2**70, "data_total_sha256": "a" * 64},
            "event_rrweb.data_total_parts must be an integer from 1 to 10000",
        ),
        (
            {"data_part": 3, "data_total_parts": 2, "data_total_sha256": "a" * 64},
            "event_rrweb.data_part must be an integer between 1 and data_total_parts, got 3",
        ),
        (
            {"data_part": 2**64, "data_total_parts": 2, "data_total_sha256": "a" * 64},
            "event_rrweb.data_part must be an integer between 1 and data_total_parts",
        ),
    ],
)
def test_rrweb_index_and_parts_out_of_range_are_refused(fields: dict, reason: str) -> None:
    assert reason_of(rrweb(**fields)).startswith(reason)


def test_rrweb_index_and_parts_at_their_limits_are_accepted() -> None:
    payload = parse_envelope(
        rrweb(
            event_index=2**63 - 1,
            data_part=protocol.MAX_PARTS,
            data_total_parts=protocol.MAX_PARTS,
            data_total_sha256="a" * 64,
        )
    ).payload
    assert (payload.event_index, payload.data_part) == (2**63 - 1, protocol.MAX_PARTS)


def test_building_a_queue_position_for_an_invalid_uuid_is_refused() -> None:
    with pytest.raises(ProtocolError, match="conversation_uuid must hold only"):
        protocol.build_queue_position(conversation_uuid="a/b", position=1, available=True)


def test_checking_an_empty_identifier_names_the_field() -> None:
    with pytest.raises(ProtocolError, match="^x.y must not be empty$"):
        protocol.check_identifier("", path="x.y", rule=protocol.ARN_RULE)
