"""The fast JSON path gives what the standard library gives, or leaves the text to it."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations import fastjson
from conversations.models import Message, RRWebBatch
from conversations.storage import row_events_json
from tests import factories as f
from tests.test_ingest import apply

BEYOND_64_BITS = 2**64 + 1  # orjson would read it as 1.8446744073709552e19

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_a_value_parsed_fast_is_the_value_the_standard_library_parses(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    fast = fastjson.loads(text)
    if fast is not fastjson.MISS:
        assert fast == json.loads(text)
        assert json.dumps(fast) == json.dumps(json.loads(text))  # 1 and 1.0 told apart too


@pytest.mark.parametrize(
    "text",
    [
        f'{{"n": {BEYOND_64_BITS}}}',
        f'{{"n": -{BEYOND_64_BITS}}}',
        '{"n": 1e400}',
        '{"n": NaN}',
        '{"s": "\\ud800"}',
        '{"s": "\\udc00\\ud800"}',
        "[" * 2000 + "]" * 2000,
        '{"a": 1}x',
        '"' + "a" * (fastjson.MAX_CHARS + 1) + '"',
    ],
)
def test_what_orjson_reads_otherwise_or_refuses_is_left_to_the_standard_library(text):
    assert fastjson.loads(text) is fastjson.MISS


@pytest.mark.django_db
def test_a_chat_message_keeps_an_integer_beyond_64_bits_exactly():
    uuid = f.new_uuid()
    apply(f.message(uuid, "order ref", order_reference=BEYOND_64_BITS))
    assert Message.objects.get().original["order_reference"] == BEYOND_64_BITS


@pytest.mark.django_db
def test_an_rrweb_batch_with_an_integer_beyond_64_bits_is_stored_as_sent():
    uuid = f.new_uuid()
    events = f.rrweb_events()
    events[-1]["data"]["id"] = BEYOND_64_BITS
    frame = f.rrweb_frame(uuid, 0, events, kind="init")
    (outcome,) = apply(frame)
    assert outcome.status == "stored"
    stored = json.loads(row_events_json(RRWebBatch.objects.get()))
    assert stored[-1]["data"]["id"] == BEYOND_64_BITS


@pytest.mark.django_db
def test_a_batch_with_a_timestamp_beyond_64_bits_is_refused_with_the_number_as_sent():
    uuid = f.new_uuid()
    events = f.rrweb_events()
    events[1]["timestamp"] = BEYOND_64_BITS
    (outcome,) = apply(f.rrweb_frame(uuid, 0, events, kind="init"))
    assert outcome.status == "rejected"
    assert f"timestamp {BEYOND_64_BITS} out of range" in outcome.reason
