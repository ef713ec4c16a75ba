"""Hostile rrweb batches through the ingest services: refused with the cap's name, kept aside."""

import json
import zlib

import pytest
from django.test import override_settings

from conversations import ingest
from conversations.models import RejectedFrame, RRWebBatch
from tests import factories as f

pytestmark = pytest.mark.django_db


def apply(*frames: dict) -> list[ingest.Outcome]:
    return ingest.items_apply([ingest.item_from_text(f.dumps(fr)) for fr in frames], source=None)


def packer_bomb(inflated: int) -> str:
    """One packed event whose text inflates to `inflated` bytes of a repeated pattern."""
    pattern = '{"x":1,"text":"the blue kettle"},'
    body = '{"type":3,"timestamp":1764000000000,"data":{"items":['
    body += pattern * (inflated // len(pattern)) + '{}]},"v":"v1"}'
    return zlib.compress(body.encode(), 9).decode("latin-1")


@override_settings(REPLAY_PACKED_MAX_STRING_BYTES=1024 * 1024)
def test_a_packer_bomb_is_kept_aside_with_the_cap_it_crossed_and_stores_nothing():
    uuid = f.new_uuid()
    bomb = packer_bomb(20 * 1024 * 1024)
    (outcome,) = apply(f.rrweb_frame(uuid, 0, bomb))
    assert outcome.status == ingest.REJECTED
    rejected = RejectedFrame.objects.get()
    assert rejected.kind == RejectedFrame.Kind.INVALID
    assert "REPLAY_PACKED_MAX_STRING_BYTES" in rejected.reason
    assert not RRWebBatch.objects.exists()


@override_settings(REPLAY_BATCH_MAX_EVENTS=3)
def test_a_batch_of_too_many_events_is_kept_aside_and_a_smaller_one_stored():
    uuid = f.new_uuid()
    apply(
        f.rrweb_frame(uuid, 0, f.rrweb_events(count=1), kind="init"),
        f.rrweb_frame(uuid, 1, json.dumps(f.incremental_events(start=f.T0 + 500, count=4))),
    )
    assert list(RRWebBatch.objects.values_list("event_index", flat=True)) == [0]
    assert "REPLAY_BATCH_MAX_EVENTS" in RejectedFrame.objects.get().reason
