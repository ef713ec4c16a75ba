"""Packing: recompress a finished page load's batches together, at about half the size.

Batches are stored as they arrive, compressed one by one at a fast level so ingest keeps up.
Once a page load (segment) is over — a later page load began, the conversation closed, or it
has been quiet for REPLAY_PACK_IDLE seconds — its batches are compressed together as one
zstd frame (rrweb.compress_segment) into a RecordingPack, and their own data is emptied.
The slow compression runs outside any write transaction; the write is short and checks that
the batches are still as they were read.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from conversations import conf, rrweb
from conversations.models import Conversation, RecordingPack, RRWebBatch
from conversations.selectors import BATCH_READ_FIELDS, batch_events_json

logger = logging.getLogger(__name__)


def segment_pack(*, conversation_id: int, segment: int) -> RecordingPack | None:
    """Pack the unpacked batches of one segment; None if fewer than two are left to pack."""
    batches = list(
        RRWebBatch.objects.filter(
            conversation_id=conversation_id, segment=segment, pack__isnull=True
        )
        .order_by("event_index")
        .only("event_index", "raw_size", *BATCH_READ_FIELDS)
    )
    if len(batches) < 2:
        return None
    texts = [batch_events_json(batch) for batch in batches]
    blob = rrweb.compress_segment(texts, level=conf.get("REPLAY_PACK_LEVEL"))
    ids = [batch.pk for batch in batches]
    with transaction.atomic():
        still = RRWebBatch.objects.select_for_update().filter(pk__in=ids, pack__isnull=True)
        if sorted(still.values_list("pk", flat=True)) != sorted(ids):
            return None  # someone else packed or removed one meanwhile: try again later
        pack = RecordingPack.objects.create(
            conversation_id=conversation_id,
            segment=segment,
            first_event_index=batches[0].event_index,
            last_event_index=batches[-1].event_index,
            batch_count=len(batches),
            raw_size=sum(len(text) for text in texts),
            stored_size=len(blob),
            data=blob,
        )
        # Batches outside the pack may use these as compression bases: they still read
        # them, through the pack.
        for position, batch in enumerate(batches):
            RRWebBatch.objects.filter(pk=batch.pk).update(
                pack=pack, pack_position=position, data=b"", stored_size=0, base=None
            )
    return pack


def packable_segments(*, finished_only: bool = True) -> list[tuple[int, int]]:
    """(conversation id, segment) pairs with at least two batches waiting to be packed."""
    waiting = (
        RRWebBatch.objects.filter(pack__isnull=True)
        .values("conversation_id", "segment")
        .annotate(count=Count("id"), last=Max("received_at"))
        .filter(count__gte=2)
        .order_by("conversation_id", "segment")
    )
    if not finished_only:
        return [(row["conversation_id"], row["segment"]) for row in waiting]
    idle_before = timezone.now() - timedelta(seconds=conf.get("REPLAY_PACK_IDLE"))
    rows = list(waiting)
    ids = {row["conversation_id"] for row in rows}
    newest = dict(
        RRWebBatch.objects.filter(conversation_id__in=ids)
        .values("conversation_id")
        .annotate(top=Max("segment"))
        .values_list("conversation_id", "top")
    )
    closed = set(Conversation.objects.filter(pk__in=ids, closed=True).values_list("pk", flat=True))
    return [
        (row["conversation_id"], row["segment"])
        for row in rows
        if row["segment"] < newest[row["conversation_id"]]
        or row["conversation_id"] in closed
        or row["last"] < idle_before
    ]


def recordings_pack(*, finished_only: bool = True, limit: int | None = None) -> int:
    """Pack finished segments (all waiting segments if not finished_only); return how many."""
    packed = 0
    for conversation_id, segment in packable_segments(finished_only=finished_only)[:limit]:
        if segment_pack(conversation_id=conversation_id, segment=segment) is not None:
            packed += 1
    return packed
