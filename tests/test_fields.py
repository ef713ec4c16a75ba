"""CompressedJSONField: payloads kept as sent, compressed, read back as the same values."""

import hashlib
import json

import pytest
from django.db import connection

from conversations.fields import PAYLOAD_DICTIONARY_1, CompressedJSONField
from conversations.models import TimelineEvent
from tests import factories as f

pytestmark = pytest.mark.django_db

VALUES = [
    {"type": "event", "event_type": "typing", "n": [1, 2.5, -3, True, None]},
    {"body": "Grüße \u2028 🫖", "nested": {"deep": [{"a": ""}]}},
    ["a list", {"of": "things"}],
    "just a string",
    0,
    {"lone": "\ud800 surrogate"},
]


def stored_envelope(event: TimelineEvent) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT envelope FROM conversations_timelineevent WHERE id = %s", [event.pk])
        return bytes(cursor.fetchone()[0])


@pytest.mark.parametrize("value", VALUES)
def test_a_value_reads_back_as_it_was_written(value):
    event = TimelineEvent.objects.create(event_type="x", envelope=value, envelope_sha256="s")
    assert TimelineEvent.objects.get(pk=event.pk).envelope == value
    assert stored_envelope(event).startswith(b"\x01")


def test_a_frame_takes_a_third_of_its_json():
    uuid = f.new_uuid()
    frame = f.event("conversation closed", uuid, event_conversation_closed=f.summary(uuid))
    event = TimelineEvent.objects.create(event_type="x", envelope=frame, envelope_sha256="s")
    assert len(stored_envelope(event)) < len(json.dumps(frame, separators=(",", ":"))) / 2.5


def test_json_text_stored_before_the_column_was_compressed_still_reads():
    field = CompressedJSONField()
    value = {"type": "message", "body": "é"}
    assert field.from_db_value(json.dumps(value), None, connection) == value
    assert field.from_db_value(json.dumps(value).encode(), None, connection) == value
    assert field.from_db_value(None, None, connection) is None


def test_the_payload_dictionary_never_changes():
    # Stored values are compressed against these exact bytes: a change needs a new tag.
    digest = hashlib.sha256(PAYLOAD_DICTIONARY_1).hexdigest()
    assert digest == "593400b92a00fb6dda05e11c3a29d5ab280366f816e734c00a3d96744dfff996"
