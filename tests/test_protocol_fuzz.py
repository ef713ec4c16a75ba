"""Property tests: the parser never fails but with ProtocolError, and valid frames round-trip."""

import copy
import hashlib
import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations import protocol
from conversations.protocol import (
    ProtocolError,
    build_queue_position,
    dumps,
    parse_envelope,
    parse_frame,
)
from tests.test_protocol import VALID_FRAMES

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "2024-05-01T10:00:00Z", "init", "events", "a" * 64])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
python_values = st.recursive(
    json_scalars | st.floats() | st.binary(max_size=4),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children)
        | st.dictionaries(st.text(max_size=12) | st.integers(), children, max_size=4)
    ),
    max_leaves=20,
)
KNOWN_KEYS = [
    "type",
    "event_type",
    "conversation_uuid",
    "conversation_arn",
    "message",
    *protocol.PAYLOAD_FIELDS.values(),
    *protocol.PARTICIPANT_EVENT_FIELDS.values(),
]
envelope_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(protocol.MESSAGE_TYPES) | json_scalars,
        "event_type": st.sampled_from(protocol.EVENT_TYPES) | json_scalars,
    },
    optional={key: json_values for key in KNOWN_KEYS[2:]},
)
VALID = [p.values[0] for p in VALID_FRAMES]


def assert_only_protocol_errors(parse: object, value: object) -> None:
    """Call parse(value); anything it raises must be a ProtocolError."""
    try:
        parse(value)
    except ProtocolError:
        pass


@FAST
@given(json_values)
def test_arbitrary_json_values_only_raise_protocol_error(value: object) -> None:
    """Any JSON value, as text or decoded, parses or raises ProtocolError."""
    assert_only_protocol_errors(parse_frame, json.dumps(value))
    assert_only_protocol_errors(parse_envelope, value)


@FAST
@given(python_values)
def test_arbitrary_python_values_only_raise_protocol_error(value: object) -> None:
    """parse_envelope copes with values no JSON decoder makes (NaN, bytes, tuples, int keys)."""
    assert_only_protocol_errors(parse_envelope, value)
    assert_only_protocol_errors(
        parse_envelope, {"type": "event", "event_type": "rrweb", "x": value}
    )


@FAST
@given(st.text() | st.text(alphabet=st.characters(codec=None), max_size=50))
def test_arbitrary_text_only_raises_protocol_error(text: str) -> None:
    """Any text, including lone surrogates, parses or raises ProtocolError."""
    assert_only_protocol_errors(parse_frame, text)


@FAST
@given(st.text(alphabet='{}[]":,\\ud800 0123456789.eE-+tfnrulsaxNI', max_size=60))
def test_json_like_noise_only_raises_protocol_error(text: str) -> None:
    """Text made of JSON punctuation and escapes parses or raises ProtocolError."""
    assert_only_protocol_errors(parse_frame, text)


@FAST
@given(envelope_like)
def test_envelope_shaped_objects_only_raise_protocol_error(frame: dict) -> None:
    """Objects with the envelope's keys and arbitrary values parse or raise ProtocolError."""
    assert_only_protocol_errors(parse_frame, json.dumps(frame))


def mutate(value: object, data: st.DataObject) -> object:
    """Replace, drop or keep one node of a JSON value, chosen by hypothesis."""
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value)))
        action = data.draw(st.sampled_from(["descend", "replace", "drop"]))
        if action == "drop":
            del value[key]
        elif action == "replace":
            value[key] = data.draw(json_values)
        else:
            value[key] = mutate(value[key], data)
        return value
    if isinstance(value, list) and value:
        index = data.draw(st.integers(0, len(value) - 1))
        value[index] = mutate(value[index], data)
        return value
    return data.draw(json_values)


@FAST
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_frames_only_raise_protocol_error(frame: dict, data: st.DataObject) -> None:
    """A valid frame with one node replaced or dropped parses or raises ProtocolError."""
    mutated = mutate(copy.deepcopy(frame), data)
    assert_only_protocol_errors(parse_frame, json.dumps(mutated))


@FAST
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_frame_text_only_raises_protocol_error(
    frame: dict, data: st.DataObject
) -> None:
    """A valid frame's text with a slice replaced by noise parses or raises ProtocolError."""
    text = json.dumps(frame)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 8)))
    noise = data.draw(st.text(max_size=8) | st.sampled_from(["\\ud800", "1e999", "NaN", "[" * 50]))
    assert_only_protocol_errors(parse_frame, text[:start] + noise + text[end:])


def test_deeply_nested_json_is_a_protocol_error() -> None:
    """Nesting deeper than the decoder handles is refused cleanly."""
    for text in ["[" * 200_000, '{"type":"ping","x":' + "[" * 200_000, '{"a":' * 100_000]:
        assert_only_protocol_errors(parse_frame, text)


# --- Valid generated frames round-trip ----------------------------------------------------------

# Identifiers are drawn from their documented alphabet; any other text is refused (see below).
ids = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:",
    min_size=1,
    max_size=protocol.UUID_RULE.max_length,
)
instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def rrweb_parts(draw: st.DrawFn) -> tuple[dict, dict]:
    """Draw a valid rrweb frame (whole or a part) and the payload it should parse to."""
    data = draw(st.text(max_size=200))
    total = draw(st.integers(1, 5))
    part = draw(st.integers(1, total))
    payload = {
        "type": draw(st.sampled_from(protocol.RRWEB_TYPES)),
        "event_index": draw(st.integers(0, 2**63 - 1)),
        "data": data,
    }
    if total > 1 or draw(st.booleans()):
        payload["data_total_parts"] = total
        payload["data_part"] = part
    if draw(st.booleans()):
        payload["data_sha256"] = hashlib.sha256(data.encode("utf-8")).hexdigest()
    if total > 1:
        payload["data_total_sha256"] = draw(st.text("0123456789abcdef", min_size=64, max_size=64))
    elif draw(st.booleans()):
        payload["data_total_sha256"] = hashlib.sha256(data.encode("utf-8")).hexdigest()
    frame = {"type": "event", "event_type": "rrweb", "conversation_uuid": draw(ids)}
    frame["event_rrweb"] = payload
    return frame, {"part": part, "total": total}


@FAST
@given(rrweb_parts())
def test_generated_rrweb_frames_round_trip(drawn: tuple[dict, dict]) -> None:
    """A valid rrweb frame's values come back exactly."""
    frame, expected = drawn
    parsed = parse_frame(dumps(frame))
    payload = parsed.payload
    assert parsed.conversation_uuid == frame["conversation_uuid"]
    assert payload.data == frame["event_rrweb"]["data"]
    assert payload.event_index == frame["event_rrweb"]["event_index"]
    assert payload.type == frame["event_rrweb"]["type"]
    assert (payload.data_part, payload.data_total_parts) == (expected["part"], expected["total"])
    assert payload.data_sha256 == frame["event_rrweb"].get("data_sha256")
    assert payload.raw == frame["event_rrweb"]


@FAST
@given(
    conversation_uuid=ids,
    message_uuid=ids,
    body=st.text(max_size=100),
    epoch=st.integers(0, 2**53),
    at=instants,
    media_urls=st.lists(st.text(max_size=20), max_size=3),
    extra=st.dictionaries(st.text(max_size=8).map(lambda k: "x_" + k), json_values, max_size=3),
)
def test_generated_message_frames_round_trip(
    conversation_uuid: str,
    message_uuid: str,
    body: str,
    epoch: int,
    at: datetime,
    media_urls: list[str],
    extra: dict,
) -> None:
    """A valid message frame's values, unknown keys included, come back exactly."""
    message = {
        "conversation_message_uuid": message_uuid,
        "body": body,
        "message_epoch": epoch,
        "message_dts": at.isoformat().replace("+00:00", "Z"),
        "media_urls": media_urls,
        **extra,
    }
    frame = {"type": "message", "conversation_uuid": conversation_uuid, "message": message}
    parsed = parse_frame(dumps(frame))
    assert parsed.conversation_uuid == conversation_uuid
    assert parsed.message.conversation_message_uuid == message_uuid
    assert parsed.message.body == body
    assert parsed.message.message_epoch == epoch
    assert parsed.message.message_dts == at
    assert parsed.message.media_urls == tuple(media_urls)
    assert parsed.raw == frame


@FAST
@given(conversation_uuid=ids, position=st.integers(-1, 2**31), available=st.booleans())
def test_built_queue_positions_round_trip(
    conversation_uuid: str, position: int, available: bool
) -> None:
    """What build_queue_position makes parses back to the same values."""
    built = build_queue_position(
        conversation_uuid=conversation_uuid, position=position, available=available
    )
    parsed = parse_frame(dumps(built))
    assert parsed.conversation_uuid == conversation_uuid
    assert (parsed.payload.position, parsed.payload.available) == (position, available)


@FAST
@given(at=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_dts_round_trip_in_every_form(at: datetime) -> None:
    """A date-time written naive, with Z or with +00:00 parses back to the same instant."""
    expected = at.replace(tzinfo=UTC)
    for text in (at.isoformat(), at.isoformat() + "Z", at.isoformat() + "+00:00"):
        if "T" not in text:
            continue
        assert protocol.parse_dts(text, field="x") == expected


@FAST
@given(st.text(min_size=1, max_size=120) | st.text(alphabet=st.characters(codec=None), max_size=8))
def test_any_text_as_conversation_uuid_is_kept_exactly_or_refused_naming_the_field(
    text: str,
) -> None:
    """A uuid either comes back unchanged and within the documented rules, or is refused."""
    try:
        parsed = parse_envelope({"type": "check queue position", "conversation_uuid": text})
    except ProtocolError as error:
        assert str(error).startswith("conversation_uuid ")
        assert len(str(error)) < 400
        return
    assert parsed.conversation_uuid == text
    assert len(text) <= protocol.UUID_RULE.max_length
    assert protocol.UUID_RULE.pattern.fullmatch(text)
