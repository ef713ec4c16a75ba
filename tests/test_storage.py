"""The storage codec: batches and packs written and read by one module, in the stored format."""

import hashlib
import json
from datetime import UTC, datetime

import pytest
import zstandard

from conversations import ingest, rrweb, storage
from conversations.models import RecordingPack, RRWebBatch
from conversations.packing import recordings_pack
from conversations.selectors import recording_batch_list
from tests import factories as f

pytestmark = pytest.mark.django_db


def batch(event_index: int, events_json: bytes, **fields) -> RRWebBatch:
    values = {
        "event_index": event_index,
        "kind": "events",
        "first_ts": f.T0,
        "last_ts": f.T0 + 900,
        "event_count": 3,
        "full_snapshots": 0,
        "href": "",
        "raw_size": len(events_json),
        "sha256": hashlib.sha256(events_json).hexdigest(),
        "received_at": datetime(2026, 11, 25, 10, 0, 1, 999_999, tzinfo=UTC),
        "source_id": None,
        **fields,
    }
    return RRWebBatch(**values)


def test_a_pack_index_is_compact_json_of_positional_entries_as_packs_always_held():
    texts = [b'[{"type":4}]', b'[{"type":3}]']
    batches = [
        batch(0, texts[0], kind="init", href="https://shop.example/", full_snapshots=1),
        batch(1, texts[1], sha256="f" * 64, raw_size=99),
    ]
    content = storage.pack_build(batches, texts, base=None)

    received = 1_795_600_801_999_999
    assert json.loads(zstandard.ZstdDecompressor().decompress(content.index)) == [
        [0, "init", f.T0, f.T0 + 900, 3, 1, "https://shop.example/", 12, None, received, None],
        [1, "events", f.T0, f.T0 + 900, 3, 0, "", 99, "f" * 64, received, None],
    ]
    assert rrweb.decompress_segment(content.data) == texts


def test_an_index_written_before_the_records_existed_reads_as_named_entries():
    old = json.dumps([[7, "events", 1, 2, 3, 0, "", 40, None, 1_700_000_000_123_456, 5]])
    (entry,) = storage.pack_index(rrweb.compress(old.encode(), level=19))
    assert entry.event_index == 7 and entry.received_us == 1_700_000_000_123_456
    assert (entry.sha256, entry.source_id) == (None, 5)
    meta = entry.meta(segment=2, pack_id=1, position=0)
    assert meta.received_at == datetime(2023, 11, 14, 22, 13, 20, 123_456, tzinfo=UTC)
    assert (meta.segment, meta.sha256, meta.row_id) == (2, "", None)


def test_packed_and_row_stored_batches_read_back_as_the_same_records():
    uuid = f.new_uuid()
    first = f.rrweb_events(start=f.T0)
    moves = f.incremental_events(start=f.T0 + 2000)
    frames = [f.rrweb_frame(uuid, 0, first, kind="init"), f.rrweb_frame(uuid, 1, moves)]
    ingest.items_apply([ingest.item_from_text(f.dumps(fr)) for fr in frames], source=None)
    conversation_id = RRWebBatch.objects.values_list("conversation_id", flat=True).first()
    as_rows = recording_batch_list(conversation_id)
    recordings_pack(finished_only=False)
    storage.events_cache_clear()
    as_packed = recording_batch_list(conversation_id)

    assert RecordingPack.objects.count() == 1 and not RRWebBatch.objects.exists()
    where = {"row_id": None, "pack_id": as_packed[0].pack_id}
    assert as_packed == [b._replace(sha256="", **where, position=n) for n, b in enumerate(as_rows)]
    assert [storage.batch_sha256(b) for b in as_packed] == [b.sha256 for b in as_rows]
    assert [json.loads(events) for _, events in storage.events_json_each(as_packed)] == [
        first,
        moves,
    ]


def test_the_batch_fields_are_the_archives_and_the_rows_columns_include_them():
    assert storage.BATCH_FIELDS == (
        "event_index",
        "kind",
        "segment",
        "first_ts",
        "last_ts",
        "event_count",
        "full_snapshots",
        "href",
        "raw_size",
        "sha256",
        "received_at",
    )
    assert set(storage.BATCH_COLUMNS) == {
        field.attname for field in RRWebBatch._meta.concrete_fields if field.name != "id"
    }
