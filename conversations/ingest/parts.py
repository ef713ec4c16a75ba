"""Multi-part rrweb batches: parts wait, bounded, until their siblings arrive."""

import time
from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, Min, Sum
from django.utils import timezone

from conversations import conf
from conversations.ingest.batches import ConversationRef, batch_store, stored_sha256
from conversations.ingest.items import Context, Item, Rejection, Status, conflict, sha256_text
from conversations.ingest.rejections import reject
from conversations.ingest.sql import table
from conversations.models import Conversation, PendingPart, RejectedFrame
from conversations.protocol import ConversationEventRRWeb, parse_frame


def pending_clear(conversation: ConversationRef, indexes: list[int]) -> None:
    """Parts of a batch that is now stored whole: matching ones go, others are kept aside."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {table(PendingPart)} WHERE conversation_id = %s LIMIT 1",
            [conversation.pk],
        )
        if cursor.fetchone() is None:
            return  # the common case: nothing was pending
    leftovers = list(
        PendingPart.objects.filter(
            conversation_id=conversation.pk, event_index__in=indexes
        ).select_related("conversation", "source")
    )
    if not leftovers:
        return
    stored = {index: stored_sha256(conversation, index) for index in indexes}
    same = [p for p in leftovers if stored.get(p.event_index) == p.total_sha256]
    PendingPart.objects.filter(pk__in=[p.pk for p in same]).delete()
    different = [p for p in leftovers if stored.get(p.event_index) != p.total_sha256]
    if different:
        parts_reject(
            Context(source=None),
            different,
            kind=RejectedFrame.Kind.CONFLICT,
            reason="parts of a batch whose event_index is now stored with different content",
        )


# The data of parts this process stored, so joining them needs no read back and re-parse.
# A part missing here (another process, a restart) is read from the database instead.
# Bounded by characters held, whatever the number or size of parts.
_PART_DATA: dict[tuple[int, int, int, str], str] = {}
_PART_DATA_LIMIT = 64 * 1024 * 1024
_part_data_held = 0


def _part_data_keep(key: tuple[int, int, int, str], data: str) -> None:
    global _part_data_held
    _PART_DATA[key] = data
    _part_data_held += len(data)
    while _part_data_held > _PART_DATA_LIMIT and _PART_DATA:
        _part_data_held -= len(_PART_DATA.pop(next(iter(_PART_DATA))))


def _part_data_take(key: tuple[int, int, int, str]) -> str | None:
    global _part_data_held
    data = _PART_DATA.pop(key, None)
    if data is not None:
        _part_data_held -= len(data)
    return data


def _pending_admit(ctx: Context, size: int) -> None:
    """Refuse a part that would take its source, or all sources, over their pending bytes.

    The part is refused rather than anything evicted: one source can never push another
    source's parts out.
    """
    per_source = conf.get("REPLAY_PENDING_MAX_BYTES_PER_SOURCE")
    if ctx.source is not None:
        held = PendingPart.objects.filter(source=ctx.source).aggregate(total=Sum("size"))
        if (held["total"] or 0) + size > per_source:
            raise Rejection(
                RejectedFrame.Kind.QUOTA,
                f"this ingest key has more than {per_source} bytes of parts waiting for their "
                "batches (REPLAY_PENDING_MAX_BYTES_PER_SOURCE)",
            )
    all_bytes = conf.get("REPLAY_PENDING_MAX_BYTES")
    total = PendingPart.objects.aggregate(total=Sum("size"))["total"] or 0
    if total + size > all_bytes:
        raise Rejection(
            RejectedFrame.Kind.QUOTA,
            f"more than {all_bytes} bytes of parts wait for their batches "
            "(REPLAY_PENDING_MAX_BYTES)",
        )


def part_store(
    ctx: Context, conversation: Conversation, event: ConversationEventRRWeb, item: Item
) -> str:
    index = event.event_index
    total_sha = event.data_total_sha256 or ""
    stored = stored_sha256(conversation, index)
    if stored is not None:
        if stored == total_sha:
            return Status.DUPLICATE
        raise conflict(
            f"event_index {index} of conversation {conversation.uuid} is already stored with "
            f"different content (sha256 {stored[:12]}…, this part's batch {total_sha[:12]}…)"
        )
    siblings = list(
        PendingPart.objects.filter(conversation=conversation, event_index=index).only(
            "id", "part", "total_parts", "total_sha256", "sha256", "kind"
        )
    )
    part_sha = event.data_sha256 or sha256_text(event.data)
    for sibling in siblings:
        if (sibling.total_parts, sibling.total_sha256, sibling.kind) != (
            event.data_total_parts,
            total_sha,
            event.type,
        ):
            raise conflict(
                f"part {event.data_part} of event_index {index} disagrees with parts already "
                f"received: data_total_parts {event.data_total_parts} vs {sibling.total_parts}, "
                f"data_total_sha256 {total_sha[:12]}… vs {sibling.total_sha256[:12]}…, "
                f"type {event.type!r} vs {sibling.kind!r}"
            )
        if sibling.part == event.data_part:
            if sibling.sha256 == part_sha:
                return Status.DUPLICATE
            raise conflict(
                f"part {event.data_part} of event_index {index} was already received with "
                "different data"
            )
    size = len(event.data.encode("utf-8", "surrogatepass"))
    completes = len(siblings) + 1 >= event.data_total_parts
    if not completes:
        _pending_admit(ctx, size)
    _part_data_keep((conversation.pk, index, event.data_part, part_sha), event.data)
    PendingPart.objects.create(
        conversation=conversation,
        event_index=index,
        kind=event.type,
        part=event.data_part,
        total_parts=event.data_total_parts,
        total_sha256=total_sha,
        sha256=part_sha,
        text=item.text or "",
        size=size,
        received_at=item.received_at,
        source=ctx.source,
    )
    if not completes:
        _pending_bound(conversation)
        return Status.PENDING
    return _parts_join(ctx, conversation, index, total_sha, event.type, item.received_at)


def _parts_join(
    ctx: Context,
    conversation: Conversation,
    index: int,
    total_sha: str,
    kind: str,
    received_at: datetime,
) -> str:
    parts = list(
        PendingPart.objects.filter(conversation=conversation, event_index=index)
        .defer("text")
        .select_related("conversation", "source")
    )
    datas = []
    for part in sorted(parts, key=lambda p: p.part):
        data = _part_data_take((conversation.pk, index, part.part, part.sha256))
        if data is None:  # stored by another process, or before a restart: read it back
            payload = parse_frame(part.text).payload
            assert isinstance(payload, ConversationEventRRWeb)
            data = payload.data
        datas.append(data)
    text = "".join(datas)
    actual = sha256_text(text)
    if actual != total_sha:
        reason = (
            f"the {len(parts)} parts of event_index {index} joined have sha256 {actual}, "
            f"not data_total_sha256 {total_sha}"
        )
        parts_reject(ctx, parts, kind=RejectedFrame.Kind.INVALID, reason=reason)
        return Status.REJECTED
    try:
        with transaction.atomic():
            status = batch_store(
                ctx,
                conversation,
                event_index=index,
                kind=kind,
                text=text,
                digest=total_sha,
                received_at=received_at,
            )
    except Rejection as rejection:
        parts_reject(ctx, parts, kind=rejection.kind, reason=rejection.reason)
        return Status.REJECTED
    PendingPart.objects.filter(pk__in=[p.pk for p in parts]).delete()
    return status


def parts_reject(ctx: Context, parts: Iterable[PendingPart], *, kind: str, reason: str) -> None:
    parts = list(parts)
    for part in parts:
        item = Item(text=part.text, received_at=part.received_at, size=len(part.text.encode()))
        reject(
            item,
            ctx,
            kind=kind,
            reason=reason,
            uuid=part.conversation.uuid,
            source=part.source,
        )
    PendingPart.objects.filter(pk__in=[p.pk for p in parts]).delete()


def _pending_groups(queryset) -> list[dict]:
    return list(
        queryset.values("conversation_id", "event_index")
        .annotate(oldest=Min("received_at"), bytes=Sum("size"), parts=Count("id"))
        .order_by("oldest")
    )


def _pending_bound(conversation: Conversation) -> None:
    """Evict the conversation's oldest incomplete batches while it is over its limits."""
    per_count = conf.get("REPLAY_PENDING_MAX_BATCHES_PER_CONVERSATION")
    per_bytes = conf.get("REPLAY_PENDING_MAX_BYTES_PER_CONVERSATION")
    groups = _pending_groups(PendingPart.objects.filter(conversation=conversation))
    while len(groups) > per_count or sum(g["bytes"] for g in groups) > per_bytes:
        victim = groups.pop(0)
        _pending_evict(
            victim,
            f"evicted: conversation {conversation.uuid} had more than {per_count} incomplete "
            f"batches or {per_bytes} bytes waiting for parts",
        )


def _pending_evict(group: dict, reason: str, kind: str = RejectedFrame.Kind.EVICTED) -> None:
    parts = PendingPart.objects.filter(
        conversation_id=group["conversation_id"], event_index=group["event_index"]
    ).select_related("conversation", "source")
    ctx = Context(source=None)
    parts_reject(ctx, parts, kind=kind, reason=reason)


_last_expiry = 0.0


def pending_expire(*, now: datetime | None = None, force: bool = False) -> int:
    """Move incomplete batches older than REPLAY_PART_TTL to rejected frames; return how many."""
    global _last_expiry
    if not force and time.monotonic() - _last_expiry < 10:
        return 0
    _last_expiry = time.monotonic()
    ttl = conf.get("REPLAY_PART_TTL")
    cutoff = (now or timezone.now()) - timezone.timedelta(seconds=ttl)
    expired = [
        group for group in _pending_groups(PendingPart.objects.all()) if group["oldest"] < cutoff
    ]
    with transaction.atomic():
        for group in expired:
            _pending_evict(
                group,
                f"expired: the batch's other parts did not arrive within {ttl} seconds",
                kind=RejectedFrame.Kind.EXPIRED,
            )
    return len(expired)
