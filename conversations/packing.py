"""Packing: recompress a finished page load's batches together, at about half the size.

Batches are stored as they arrive, compressed one by one at a fast level so ingest keeps up.
Once a page load (segment) is over — a later page load began, the conversation closed, or it
has been quiet for REPLAY_PACK_IDLE seconds — its batches are compressed together as one
zstd frame into a RecordingPack, with their fields in its index (conversations.storage
says how), and their rows go. A page load of a single batch is packed too: compressed
against an earlier page, or a dictionary, its full snapshot takes a fraction of its row.
The slow compression runs outside any write transaction; the write is short and checks that
the batches are still as they were read.

A conversation's first pack has no earlier page of its own; it is compressed against a
shared dictionary instead: what the first packs of recent conversations have in common
(rrweb.shared_text), built once there are REPLAY_PACK_DICTIONARY_SAMPLES of them and again
every REPLAY_PACK_DICTIONARY_DAYS.
"""

import logging
import time
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from conversations import conf, rrweb, storage
from conversations.models import Conversation, RecordingDictionary, RecordingPack, RRWebBatch

logger = logging.getLogger(__name__)


def segment_pack(*, conversation_id: int, segment: int) -> RecordingPack | None:
    """Pack the row-stored batches of one segment; None if none are left to pack."""
    batches = list(
        RRWebBatch.objects.filter(conversation_id=conversation_id, segment=segment).order_by(
            "event_index"
        )
    )
    if not batches:
        return None
    texts = [storage.row_events_json(batch) for batch in batches]
    root = (
        RecordingPack.objects.filter(conversation_id=conversation_id, base__isnull=True)
        .order_by("first_event_index")
        .values_list("pk", flat=True)
        .first()
    )
    # The conversation's first pack is the dictionary of the others (and has only a shared
    # one itself, so reading any pack takes at most one other): later pages repeat its markup
    # and styles.
    dictionary = storage.dictionary_newest() if root is None else None
    if root is not None:
        base = storage.pack_events_json(root)[0]
    else:
        base = dictionary[1] if dictionary is not None else None
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
            dictionary_id=dictionary[0] if dictionary is not None else None,
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
    """(conversation id, segment) pairs with batches waiting to be packed."""
    waiting = (
        RRWebBatch.objects.values("conversation_id", "segment")
        .annotate(last=Max("received_at"))
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


def recordings_pack(
    *, finished_only: bool = True, limit: int | None = None, budget: float | None = None
) -> int:
    """Pack finished segments (all waiting segments if not finished_only); return how many.

    Then build a shared dictionary for the packs to come, if one is due. With `budget`
    (seconds), stop starting new packs once it is spent, and return -1 if some were left.
    """
    packed = 0
    deadline = None if budget is None else time.monotonic() + budget
    segments = packable_segments(finished_only=finished_only)[:limit]
    for number, (conversation_id, segment) in enumerate(segments):
        if number and deadline is not None and time.monotonic() >= deadline:
            return -1  # at least one is packed each time: a pass always moves on
        if segment_pack(conversation_id=conversation_id, segment=segment) is not None:
            packed += 1
    dictionary_refresh()
    return packed


# Conversations' first packs of at most this many bytes each are compared for a dictionary.
_SAMPLE_BYTES = 1024 * 1024


def dictionary_refresh(*, now: datetime | None = None) -> RecordingDictionary | None:
    """Build a shared dictionary if the newest is REPLAY_PACK_DICTIONARY_DAYS old (or there
    is none) and enough conversations have been packed since; return it if one was built."""
    days = conf.get("REPLAY_PACK_DICTIONARY_DAYS")
    if not days:
        return None
    newest = RecordingDictionary.objects.values_list("created_at", flat=True).first()
    if newest is not None and newest > (now or timezone.now()) - timedelta(days=days):
        return None
    roots = RecordingPack.objects.filter(base__isnull=True)
    if newest is not None:
        roots = roots.filter(created_at__gt=newest)
    count = conf.get("REPLAY_PACK_DICTIONARY_SAMPLES")
    # A conversation's first pack is the one without a base: one each, almost always.
    chosen: dict[int, int] = {}
    for conversation_id, pk in roots.order_by("-id").values_list("conversation_id", "pk")[
        : 2 * count
    ]:
        chosen.setdefault(conversation_id, pk)
    if len(chosen) < count:
        return None
    samples = [
        b"".join(storage.pack_events_json(pk))[:_SAMPLE_BYTES]
        for pk in list(chosen.values())[:count]
    ]
    # When they share nothing the text is empty, and first packs go without a dictionary
    # until the next one is due, rather than comparing samples again every round.
    text = rrweb.shared_text(samples)
    return storage.dictionary_create(text, sample_count=len(samples))
