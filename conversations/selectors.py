"""Read queries for the API, the staff pages and the exports."""

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from conversations import rrweb
from conversations.models import Conversation, Message, MessageEdit, RRWebBatch

_EVENTS_CACHE: dict[tuple[int, str], bytes] = {}
_EVENTS_CACHE_LIMIT = 256


def batch_events_json(batch: RRWebBatch) -> bytes:
    """Return a stored batch's events as JSON array text, decompressing through its base."""
    # Keyed by content too: a rolled-back transaction can hand the same id to another batch.
    cache_key = (batch.pk, batch.sha256)
    cached = _EVENTS_CACHE.get(cache_key)
    if cached is not None:
        return cached
    base_json = None
    if batch.base_id is not None:
        base = RRWebBatch.objects.only("id", "sha256", "data", "base_id", "full_snapshots").get(
            pk=batch.base_id
        )
        base_json = batch_events_json(base)
    events_json = rrweb.decompress(bytes(batch.data), base=base_json)
    if batch.full_snapshots:
        # Bases are read again for every batch that follows them: keep the recent ones.
        if len(_EVENTS_CACHE) >= _EVENTS_CACHE_LIMIT:
            _EVENTS_CACHE.pop(next(iter(_EVENTS_CACHE)))
        _EVENTS_CACHE[cache_key] = events_json
    return events_json


def events_json_by_id(batch_id: int, sha256: str) -> bytes:
    """A stored batch's events by id; `sha256` (its content hash) guards the cache."""
    cached = _EVENTS_CACHE.get((batch_id, sha256))
    if cached is not None:
        return cached
    batch = RRWebBatch.objects.only("id", "sha256", "data", "base_id", "full_snapshots").get(
        pk=batch_id
    )
    return batch_events_json(batch)


def events_cache_clear() -> None:
    """Forget cached base batches."""
    _EVENTS_CACHE.clear()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# Conversation list -------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[Conversation]
    next_cursor: str | None


def _encode_cursor(conversation: Conversation) -> str:
    raw = f"{conversation.first_seen_at.isoformat()}|{conversation.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, pk = raw.split("|")
        return datetime.fromisoformat(moment), int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


def conversation_page(
    *, queryset: QuerySet[Conversation] | None = None, cursor: str = "", limit: int = 50
) -> Page:
    """One page of conversations, newest first, by keyset so deep pages stay fast."""
    queryset = (queryset if queryset is not None else Conversation.objects.all()).order_by(
        "-first_seen_at", "-id"
    )
    after = _decode_cursor(cursor) if cursor else None
    if after is not None:
        moment, pk = after
        queryset = queryset.filter(first_seen_at__lt=moment) | queryset.filter(
            first_seen_at=moment, id__lt=pk
        )
        queryset = queryset.order_by("-first_seen_at", "-id")
    items = list(queryset[: limit + 1])
    next_cursor = _encode_cursor(items[limit - 1]) if len(items) > limit else None
    return Page(items=items[:limit], next_cursor=next_cursor)


def conversation_summary_dict(conversation: Conversation) -> dict:
    """A conversation as a list row, with the protocol's field names."""
    return {
        "conversation_uuid": conversation.uuid,
        "conversation_arn": conversation.arn or None,
        "merchant_id": conversation.merchant_id or None,
        "medium": conversation.medium or None,
        "start_dts": _iso(conversation.start_dts),
        "closed": conversation.closed,
        "closed_dts": _iso(conversation.closed_dts),
        "last_message_dts": _iso(conversation.last_message_dts),
        "last_conversation_message_body": conversation.last_message_body or None,
        "last_conversation_participant_arn": conversation.last_participant_arn or None,
        "last_conversation_participant_name": conversation.last_participant_name or None,
        "message_count": conversation.message_total,
        "first_seen_dts": _iso(conversation.first_seen_at),
        "recording": {
            "batches": conversation.rrweb_batch_total,
            "events": conversation.rrweb_event_total,
            "start_ms": conversation.recording_start_ms,
            "end_ms": conversation.recording_end_ms,
        },
    }


# One conversation --------------------------------------------------------------------------


def conversation_get(*, uuid: str) -> Conversation | None:
    """The conversation with its participants, messages (with edits) and timeline events."""
    return (
        Conversation.objects.filter(uuid=uuid)
        .prefetch_related(
            "participants",
            Prefetch(
                "messages",
                queryset=Message.objects.prefetch_related(
                    Prefetch("edits", queryset=MessageEdit.objects.order_by("received_at", "id"))
                ),
            ),
            "events",
        )
        .first()
    )


def message_dict(message: Message) -> dict:
    """A message as sent (protocol names), with its current body and its edits."""
    data = (
        dict(message.original)
        if message.original
        else {
            "conversation_message_uuid": message.message_uuid,
            "author_conversation_participant_arn": message.author_arn or None,
            "author_conversation_participant_name": message.author_name or None,
            "body": message.body,
            "message_dts": _iso(message.message_dts),
            "message_epoch": message.message_epoch,
        }
    )
    data["current_body"] = message.body
    data["received_dts"] = _iso(message.received_at)
    data["edits"] = [
        {"body": edit.body, "received_dts": _iso(edit.received_at), "message": edit.payload}
        for edit in message.edits.all()
    ]
    return data


def conversation_detail_dict(conversation: Conversation) -> dict:
    """The whole conversation for the API: summary, participants, messages, events."""
    data = conversation_summary_dict(conversation)
    data["summary"] = conversation.summary
    data["participants"] = [
        {
            **participant.raw,
            "conversation_participant_arn": participant.arn or None,
            "conversation_participant_name": participant.name or None,
            "conversation_participant_uuid": participant.participant_uuid or None,
            "joined_dts": _iso(participant.joined_dts),
            "left_dts": _iso(participant.left_dts),
            "status": participant.status or None,
        }
        for participant in conversation.participants.all()
    ]
    data["messages"] = [message_dict(message) for message in conversation.messages.all()]
    data["events"] = [
        {
            "event_type": event.event_type,
            "received_dts": _iso(event.at),
            "event_dts": _iso(event.event_dts),
            "summary": event.summary,
            "envelope": event.envelope,
        }
        for event in conversation.events.all()
    ]
    return data


# Recordings ----------------------------------------------------------------------------------


def recording_batches(conversation: Conversation) -> QuerySet[RRWebBatch]:
    """The conversation's rrweb batches in recording order, without their data."""
    return (
        RRWebBatch.objects.filter(conversation=conversation).order_by("event_index").defer("data")
    )


def batch_meta_dict(batch: RRWebBatch) -> dict:
    return {
        "event_index": batch.event_index,
        "type": batch.kind,
        "segment": batch.segment,
        "first_ts": batch.first_ts,
        "last_ts": batch.last_ts,
        "event_count": batch.event_count,
        "full_snapshots": batch.full_snapshots,
        "href": batch.href or None,
        "received_dts": _iso(batch.received_at),
    }


def segments(batches: list[RRWebBatch]) -> list[dict]:
    """Group batch metadata into segments (page loads), with event offsets into the stream."""
    result: list[dict] = []
    offset = 0
    for batch in batches:
        if not result or result[-1]["segment"] != batch.segment:
            result.append(
                {
                    "segment": batch.segment,
                    "href": batch.href or None,
                    "first_ts": batch.first_ts,
                    "last_ts": batch.last_ts,
                    "first_event": offset,
                    "event_count": 0,
                    "first_event_index": batch.event_index,
                }
            )
        current = result[-1]
        current["last_ts"] = max(current["last_ts"], batch.last_ts)
        current["first_ts"] = min(current["first_ts"], batch.first_ts)
        current["event_count"] += batch.event_count
        current["href"] = current["href"] or batch.href or None
        offset += batch.event_count
    return result


def recording_events_chunks(conversation: Conversation) -> Iterator[bytes]:
    """The conversation's rrweb events as pieces of one JSON array, without parsing them."""
    batches = (
        RRWebBatch.objects.filter(conversation=conversation)
        .order_by("event_index")
        .only("id", "sha256", "data", "base_id", "full_snapshots")
    )
    yield b"["
    first = True
    for batch in batches.iterator(chunk_size=64):
        inner = batch_events_json(batch).strip()[1:-1].strip()
        if not inner:
            continue
        if not first:
            yield b","
        first = False
        yield inner
    yield b"]"
