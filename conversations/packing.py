"""Packing: recompress a finished page load's batches together, at about half the size.

Batches are stored as they arrive, compressed one by one at a fast level so ingest keeps up.
Once a page load (segment) is over — a later page load began, the conversation closed, or it
has been quiet for REPLAY_PACK_IDLE seconds — its batches are compressed together as one
zstd frame into a RecordingPack, with their fields in its index (conversations.storage
says how), and their rows go.
The slow compression runs outside any write transaction; the write is short and checks that
the batches are still as they were read.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from conversations import conf, storage
from conversations.models import Conversation, RecordingPack, RRWebBatch

logger = logging.getLogger(__name__)


def segment_pack(*, conversation_id: int, segment: int) -> RecordingPack | None:
    """Pack the row-stored batches of one segment; None if fewer than two are left to pack."""
    batches = list(
        RRWebBatch.objects.filter(conversation_id=conversation_id, segment=segment).order_by(
            "event_index"
        )
    )
    if len(batches) < 2:
        return None
    texts = [storage.row_events_json(batch) for batch in batches]
    root = (
        RecordingPack.objects.filter(conversation_id=conversation_id, base__isnull=True)
        .order_by("first_event_index")
        .values_list("pk", flat=True)
        .first()
    )
    # The conversation's first pack is the dictionary of the others (and has none itself, so
    # reading any pack takes at most one other): later pages repeat its markup and styles.
    base = storage.pack_events_json(root)[0] if root is not None else None
    content = storage.pack_build(batches, texts, base=base)
    ids = [batch.pk for batch in batches]
    with transaction.atomic():
        still = RRWebBatch.objects.select_for_update().filter(pk__in=ids)
        if sorted(still.values_list("pk", flat=True)) != sorted(ids):
            return None  # someone else packed or removed one meanwhile: try again later
        first, last = batches[0].event_index, batches[-1].event_index
        if RecordingPack.objects.filter(
            conversation_id=conversation_id,
            first_event_index__lte=last,
            last_event_index__gte=first,
        ).exists():
            return None  # a late batch inside an earlier pack's range: ranges never overlap
        pack = RecordingPack.objects.create(
            conversation_id=conversation_id,
            segment=segment,
            first_event_index=first,
            last_event_index=last,
            batch_count=len(batches),
            raw_size=sum(len(text) for text in texts),
            stored_size=len(content.data),
            data=content.data,
            index=content.index,
            base_id=root,
        )
        # Batches left out of the pack may use these as compression bases: give them their
        # events compressed on their own before their bases go.
        for dependant in RRWebBatch.objects.filter(base_id__in=ids).exclude(pk__in=ids):
            data = storage.events_compress(storage.row_events_json(dependant))
            RRWebBatch.objects.filter(pk=dependant.pk).update(
                data=data, stored_size=len(data), base=None
            )
        RRWebBatch.objects.filter(pk__in=ids).update(base=None)
        RRWebBatch.objects.filter(pk__in=ids).delete()
    return pack


def packable_segments(*, finished_only: bool = True) -> list[tuple[int, int]]:
    """(conversation id, segment) pairs with at least two batches waiting to be packed."""
    waiting = (
        RRWebBatch.objects.values("conversation_id", "segment")
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
