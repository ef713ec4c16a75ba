"""Property tests: whatever sources send, every frame is stored or kept aside with a reason."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations import ingest
from conversations.ingest.worker import journal_drain
from conversations.models import RejectedFrame
from conversations.protocol import ProtocolError, parse_frame
from replay.asgi import application
from tests import factories as f
from tests.test_protocol import VALID_FRAMES

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
valid_frames = st.sampled_from([param.values[0] for param in VALID_FRAMES])
CONVERSATION = "fuzzed-conversation"
rrweb_frames = st.builds(
    lambda index, kind, count: f.rrweb_frame(
        CONVERSATION, index, f.rrweb_events(count=count), kind=kind
    ),
    st.integers(0, 5),
    st.sampled_from(["init", "events"]),
    st.integers(1, 5),
)


@st.composite
def mutated(draw, frames=valid_frames | rrweb_frames) -> dict:
    """A valid frame with one field dropped or replaced by any JSON value."""
    frame = json.loads(json.dumps(draw(frames)))
    target = frame  # the envelope itself, or one of its payload objects
    if draw(st.booleans()):
        payloads = [k for k, v in frame.items() if isinstance(v, dict)]
        if payloads:
            target = frame[draw(st.sampled_from(payloads))]
    if target:
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(json_values)
    return frame


frame_texts = st.one_of(
    valid_frames.map(f.dumps),
    rrweb_frames.map(f.dumps),
    mutated().map(f.dumps),
    json_values.map(json.dumps),
    st.text(max_size=40),
)


def _parses(text: str) -> bool:
    try:
        parse_frame(text)
    except ProtocolError:
        return False
    return True


@pytest.mark.django_db
@SETTINGS
@given(texts=st.lists(frame_texts, min_size=1, max_size=12))
def test_every_frame_of_any_group_is_stored_or_kept_aside_with_a_reason(texts):
    before = RejectedFrame.objects.count()
    items = [ingest.item_from_text(text) for text in texts]
    outcomes = ingest.items_apply(items, source=None)
    assert len(outcomes) == len(texts)
    statuses = {ingest.STORED, ingest.DUPLICATE, ingest.PENDING, ingest.REJECTED}
    assert {o.status for o in outcomes} <= statuses
    rejected = [o for o in outcomes if o.status == ingest.REJECTED]
    assert all(o.reason for o in rejected)
    new = RejectedFrame.objects.order_by("id")[before:]
    assert len(new) == len(rejected)
    assert all(row.reason for row in new)
    # A frame the parser refuses is never stored.
    for text, outcome in zip(texts, outcomes, strict=True):
        if not _parses(text):
            assert outcome.status == ingest.REJECTED


@pytest.mark.django_db(transaction=True)
@settings(SETTINGS, max_examples=15)
@given(texts=st.lists(frame_texts, min_size=1, max_size=10))
def test_the_ingest_socket_survives_any_frames_and_still_answers_ping(source, texts):
    @async_to_sync
    async def stream() -> dict:
        comm = WebsocketCommunicator(application, f"/ws/ingest/?key={source.raw_key}")
        await comm.connect()
        for text in texts:  # send_input: send_to refuses an empty text frame
            await comm.send_input({"type": "websocket.receive", "text": text})
        await comm.send_to(text_data='{"type":"ping"}')
        replies = []
        while True:
            reply = await comm.receive_output(timeout=10)
            if reply["type"] == "websocket.close":
                break
            replies.append(json.loads(reply["text"]))
            if replies[-1] == {"type": "ping"}:
                break
        await comm.disconnect()
        return replies[-1] if replies else reply

    before = RejectedFrame.objects.count()
    assert stream() == {"type": "ping"}
    journal_drain()
    unparsable = sum(not _parses(text) for text in texts)
    assert RejectedFrame.objects.count() - before >= unparsable
