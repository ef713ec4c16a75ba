"""Conversation.clock_offset_ms: the clock offset (conversations/clock.py), kept as batches
arrive instead of computed over every batch on each read; filled here for stored recordings."""

import json
from collections import defaultdict

import zstandard
from django.db import migrations, models

# A pack's index entry: [event_index, kind, first_ts, last_ts, ..., received_us, source_id].
LAST_TS, RECEIVED_US = 3, 9


def offsets_fill(apps, schema_editor) -> None:
    """offset = min(received_at_ms - last_ts) over each conversation's rows and packs."""
    Conversation = apps.get_model("conversations", "Conversation")
    RRWebBatch = apps.get_model("conversations", "RRWebBatch")
    RecordingPack = apps.get_model("conversations", "RecordingPack")
    offsets: dict[int, int] = defaultdict(lambda: 2**62)
    rows = RRWebBatch.objects.values_list("conversation_id", "received_at", "last_ts")
    for conversation_id, received_at, last_ts in rows.iterator(chunk_size=2000):
        sample = round(received_at.timestamp() * 1000) - last_ts
        offsets[conversation_id] = min(offsets[conversation_id], sample)
    packs = RecordingPack.objects.values_list("conversation_id", "index")
    for conversation_id, index in packs.iterator(chunk_size=200):
        entries = json.loads(zstandard.ZstdDecompressor().decompressobj().decompress(bytes(index)))
        for entry in entries:
            sample = round(entry[RECEIVED_US] / 1000) - entry[LAST_TS]
            offsets[conversation_id] = min(offsets[conversation_id], sample)
    for conversation_id, offset in offsets.items():
        Conversation.objects.filter(pk=conversation_id).update(clock_offset_ms=offset)


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0013_storage_compaction"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="clock_offset_ms",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(offsets_fill, migrations.RunPython.noop),
    ]
