"""Read queries for the API, the staff pages and the exports."""

import base64
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import orjson
from django.db import connection
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery

from conversations import clock, fastjson
from conversations.assets import rewrite_events
from conversations.models import (
    Conversation,
    ConversationNote,
    ConversationView,
    Message,
    MessageEdit,
    PageError,
    Participant,
    RecordingPack,
    RRWebBatch,
    TimelineEvent,
)
from conversations.permissions import can_delete_note
from conversations.storage import (
    BATCH_FIELDS,
    BATCH_READ_FIELDS,
    BatchMeta,
    events_json_each,
    pack_batches,
    row_events_json,
    row_meta,
)


def recording_batch_list(
    conversation_id: int, *, first_index: int | None = None, last_index: int | None = None
) -> list[BatchMeta]:
    """A conversation's batches in order, packed or not.

    Readers go through this (and conversations.storage for the events), never RRWebBatch
    queries alone: the batches of finished page loads live in packs, not rows.
    """
    rows = RRWebBatch.objects.filter(conversation_id=conversation_id)
    packs = RecordingPack.objects.filter(conversation_id=conversation_id).only(
        "id", "segment", "index"
    )
    if first_index is not None:
        rows = rows.filter(event_index__gte=first_index)
        packs = packs.filter(last_event_index__gte=first_index)
    if last_index is not None:
        rows = rows.filter(event_index__lte=last_index)
        packs = packs.filter(first_event_index__lte=last_index)
    batches = [
        BatchMeta(*values[:-1], row_id=values[-1])
        for values in rows.values_list(*BATCH_FIELDS, "id")
    ]
    for pack in packs:
        batches += [
            batch
            for batch in pack_batches(pack)
            if (first_index is None or batch.event_index >= first_index)
            and (last_index is None or batch.event_index <= last_index)
        ]
    batches.sort(key=lambda batch: batch.event_index)
    return batches


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
        "scrubbed_count": conversation.scrubbed_total,
        "first_seen_dts": _iso(conversation.first_seen_at),
        "first_page_href": conversation.first_href or None,
        "recording": {
            "batches": conversation.rrweb_batch_total,
            "events": conversation.rrweb_event_total,
            "start_ms": conversation.recording_start_ms,
            "end_ms": conversation.recording_end_ms,
            "console_errors": conversation.console_error_total,
            "network_errors": conversation.network_error_total,
        },
    }


def conversation_row_dict(conversation: Conversation) -> dict:
    """A row of conversation_filter(…, user=…): the summary, the customer's first message and
    when the user last replayed it."""
    return {
        **conversation_summary_dict(conversation),
        "first_customer_message_body": conversation.first_customer_message,
        "watched_dts": _iso(conversation.watched_at),
    }


# One conversation --------------------------------------------------------------------------


def conversation_get(*, uuid: str) -> Conversation | None:
    """The conversation with its participants, messages (with edits), timeline events and
    staff notes."""
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
            "notes",
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
    data["tags"] = conversation.tag_list
    data["notes"] = note_list(conversation)
    return data


# Recordings ----------------------------------------------------------------------------------


def recording_batches(conversation: Conversation) -> list[BatchMeta]:
    """The conversation's rrweb batches in recording order."""
    return recording_batch_list(conversation.pk)


def batch_meta_dict(batch: BatchMeta) -> dict:
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


def segments(batches: list[BatchMeta]) -> list[dict]:
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
    yield b"["
    first = True
    for _, events_json in events_json_each(recording_batch_list(conversation.pk)):
        inner = events_json.strip()[1:-1].strip()
        if not inner:
            continue
        if not first:
            yield b","
        first = False
        yield inner
    yield b"]"


# Staff pages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationFilters:
    """What the conversation list is narrowed to; every field comes from the page's URL."""

    q: str = ""
    start_from: date | None = None
    start_to: date | None = None
    closed: bool | None = None
    has_recording: bool | None = None
    medium: str = ""
    participant: str = ""
    tag: str = ""
    has_messages: bool | None = None
    # Narrowed to what the staff member reading the list has not replayed yet.
    unwatched: bool = False
    had_errors: bool = False  # console errors or failed requests in the recording


def _search_words(q: str) -> list[str]:
    return [word for word in q.split() if word][:8]


def _conversation_search(queryset: QuerySet[Conversation], q: str) -> QuerySet[Conversation]:
    """Conversations whose messages, participants or staff notes match `q`.

    PostgreSQL: full-text search (websearch syntax, `simple` configuration so names and
    e-mails match as written); elsewhere every word must appear, case-insensitively.
    """
    words = _search_words(q)
    if not words:
        return queryset
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        query = SearchQuery(q, config="simple", search_type="websearch")
        messages = Message.objects.annotate(document=SearchVector("body", config="simple")).filter(
            conversation_id=OuterRef("pk"), document=query
        )
        people = Participant.objects.annotate(
            document=SearchVector("name", "email", config="simple")
        ).filter(conversation_id=OuterRef("pk"), document=query)
        notes = ConversationNote.objects.annotate(
            document=SearchVector("text", config="simple")
        ).filter(conversation_id=OuterRef("pk"), document=query)
        return queryset.filter(Exists(messages) | Exists(people) | Exists(notes))
    message_match = Q()
    people_match = Q()
    note_match = Q()
    for word in words:
        message_match &= Q(body__icontains=word)
        people_match &= Q(name__icontains=word) | Q(email__icontains=word)
        note_match &= Q(text__icontains=word)
    messages = Message.objects.filter(message_match, conversation_id=OuterRef("pk"))
    people = Participant.objects.filter(people_match, conversation_id=OuterRef("pk"))
    notes = ConversationNote.objects.filter(note_match, conversation_id=OuterRef("pk"))
    return queryset.filter(Exists(messages) | Exists(people) | Exists(notes))


def _tagged(queryset: QuerySet[Conversation], tag: str) -> QuerySet[Conversation]:
    """Conversations carrying `tag` among their comma-separated tags, in any case."""
    # re.escape only puts a backslash before characters that are not letters or digits, which
    # both Python's (SQLite) and PostgreSQL's regular expressions read as the character itself.
    return queryset.filter(tags__iregex=rf"(^|,)\s*{re.escape(tag)}\s*(,|$)")


# The customer is the participant who started the chat: the first to join. NULLs sort last
# on both databases alike (SQLite would put them first, PostgreSQL last).
_CUSTOMER_ORDER = (F("joined_dts").asc(nulls_last=True), F("id").asc())
_MESSAGE_ORDER = (
    F("message_epoch").asc(nulls_last=True),
    F("message_dts").asc(nulls_last=True),
    F("received_at").asc(),
    F("id").asc(),
)


def _first_customer_message() -> Subquery:
    """The body of the customer's first message with text, per conversation of the query."""
    customer = Participant.objects.filter(conversation_id=OuterRef(OuterRef("pk"))).order_by(
        *_CUSTOMER_ORDER
    )
    first = (
        Message.objects.filter(conversation_id=OuterRef("pk"))
        .exclude(author_arn="")
        .exclude(body="")
        .filter(author_arn=Subquery(customer.values("arn")[:1]))
        .order_by(*_MESSAGE_ORDER)
    )
    return Subquery(first.values("body")[:1])


def _last_viewed_by(user) -> Subquery:
    # A scalar subquery, not Exists: PostgreSQL would hash all of the user's views (tens of
    # thousands for a busy reviewer) to mark 50 rows; this is one index probe a row.
    views = ConversationView.objects.filter(user=user, conversation_id=OuterRef("pk"))
    return Subquery(views.values("last_viewed_at")[:1])


def conversation_filter(filters: ConversationFilters, *, user=None) -> QuerySet[Conversation]:
    """Conversations narrowed by the list page's filters, with participants prefetched.

    With `user`, each row says when they last replayed it (`watched_at`, None if never), and
    `unwatched` narrows to those they have not.
    """
    queryset = Conversation.objects.all()
    if filters.has_messages is True:
        queryset = queryset.filter(message_total__gt=0)
    elif filters.has_messages is False:
        queryset = queryset.filter(message_total=0)
    if user is not None:
        queryset = queryset.annotate(watched_at=_last_viewed_by(user))
        if filters.unwatched:
            queryset = queryset.filter(watched_at__isnull=True)
    if filters.start_from:
        queryset = queryset.filter(first_seen_at__date__gte=filters.start_from)
    if filters.start_to:
        queryset = queryset.filter(first_seen_at__date__lte=filters.start_to)
    if filters.closed is not None:
        queryset = queryset.filter(closed=filters.closed)
    if filters.has_recording is True:
        queryset = queryset.filter(rrweb_batch_total__gt=0)
    elif filters.has_recording is False:
        queryset = queryset.filter(rrweb_batch_total=0)
    if filters.medium:
        queryset = queryset.filter(medium=filters.medium)
    if filters.had_errors:
        queryset = queryset.filter(Q(console_error_total__gt=0) | Q(network_error_total__gt=0))
    if filters.participant:
        people = Participant.objects.filter(
            Q(name__icontains=filters.participant) | Q(email__icontains=filters.participant),
            conversation_id=OuterRef("pk"),
        )
        queryset = queryset.filter(Exists(people))
    if filters.tag:
        queryset = _tagged(queryset, filters.tag)
    queryset = _conversation_search(queryset, filters.q)
    last = Message.objects.filter(conversation_id=OuterRef("pk")).order_by(
        "-message_epoch", "-message_dts", "-id"
    )
    return queryset.annotate(
        latest_body=Subquery(last.values("body")[:1]),
        latest_author=Subquery(last.values("author_name")[:1]),
        first_customer_message=_first_customer_message(),
    ).prefetch_related("participants")


def conversation_media() -> list[str]:
    """The media seen so far, for the list's filter."""
    return sorted(
        Conversation.objects.exclude(medium="").values_list("medium", flat=True).distinct()
    )


def note_dict(note: ConversationNote, *, user=None) -> dict:
    """A note for the API and the replay page; with `user`, whether they may delete it."""
    data = {
        "id": note.pk,
        "offset_ms": note.offset_ms,
        "text": note.text,
        "author": note.author_name,
        "created_dts": _iso(note.created_at),
    }
    if user is not None:
        data["can_delete"] = can_delete_note(user, note)
    return data


def note_list(conversation: Conversation, *, user=None) -> list[dict]:
    """The conversation's notes in recording order."""
    return [note_dict(note, user=user) for note in conversation.notes.all()]


def clock_offset(conversation: Conversation) -> int:
    """Server minus browser clock (ms), as ingest keeps it; see conversations.clock.

    Without a batch there is no sample, and the clocks are taken to agree.
    """
    return conversation.clock_offset_ms if conversation.clock_offset_ms is not None else 0


def clock_offset_recomputed(conversation_id: int) -> int:
    """The clock offset computed again from every batch: what ingest keeps, read the slow way."""
    batches = recording_batch_list(conversation_id)
    return clock.clock_offset_ms((batch.received_at, batch.last_ts) for batch in batches)


@dataclass(frozen=True)
class ReplayData:
    """What a page showing one conversation's replay and transcript reads, read once."""

    conversation: Conversation
    offset_ms: int
    items: list[dict]


def replay_data(*, uuid: str) -> ReplayData | None:
    """The conversation, its clock offset and its transcript; None if unknown."""
    conversation = conversation_get(uuid=uuid)
    if conversation is None:
        return None
    offset_ms = clock_offset(conversation)
    return ReplayData(conversation, offset_ms, transcript_items(conversation, offset_ms=offset_ms))


def _server_ms(moment: datetime | None) -> int | None:
    return clock.epoch_ms(moment) if moment else None


_QUIET_EVENT_TYPES = {"new message", "rrweb"}


def message_server_ms(message: Message) -> int | None:
    """When a message was sent, on the server's clock (epoch ms): where the replay page and the
    exports place it on the recording, once moved to the browser's clock (clock.py)."""
    return message.message_epoch or _server_ms(message.message_dts or message.received_at)


def message_item(message: Message, *, offset_ms: int, customer_arn: str) -> dict:
    """A message as a transcript line, placed on the recording's clock."""
    server_ms = message_server_ms(message)
    return {
        "kind": "message",
        "id": message.message_uuid,
        "server_ms": server_ms,
        "epoch": clock.to_recording_ms(server_ms, offset_ms),
        "author": message.author_name or "Unknown",
        "customer": bool(customer_arn) and message.author_arn == customer_arn,
        "body": message.body,
        "type": message.type or "message",
        "edits": [
            {"body": edit.body, "received_ms": _server_ms(edit.received_at)}
            for edit in message.edits.all()
        ],
        "original_body": (message.original or {}).get("body") if message.edit_count else None,
    }


def event_item(event: TimelineEvent, *, offset_ms: int) -> dict:
    """A timeline event as a system line of the transcript."""
    server_ms = _server_ms(event.event_dts or event.at)
    text = event.summary or event.event_type
    if event.event_type == "updated message":
        text = f"{event.actor_name or 'Someone'} edited a message"
    return {
        "kind": "system",
        "id": f"event-{event.pk}",
        "event_type": event.event_type,
        "server_ms": server_ms,
        "epoch": clock.to_recording_ms(server_ms, offset_ms),
        "text": text,
    }


def customer_arn(conversation: Conversation) -> str:
    """The arn of the participant who started the chat (the first to join)."""
    first = conversation.participants.order_by(*_CUSTOMER_ORDER).first()
    return first.arn if first else ""


def transcript_items(conversation: Conversation, *, offset_ms: int) -> list[dict]:
    """Messages and system lines in time order, each with its time on the recording's clock."""
    customer = customer_arn(conversation)
    items = [
        message_item(message, offset_ms=offset_ms, customer_arn=customer)
        for message in conversation.messages.all()
    ]
    items += [
        event_item(event, offset_ms=offset_ms)
        for event in conversation.events.all()
        if event.event_type not in _QUIET_EVENT_TYPES
    ]
    items.sort(key=lambda item: (item["server_ms"] is None, item["server_ms"] or 0))
    return items


def recording_index(conversation: Conversation, batches: list[BatchMeta] | None = None) -> dict:
    """What a player needs before any event: batches with their times, full snapshots, pages.

    Each batch is [event_index, first_ts, last_ts, event_count, full_snapshots, segment].
    `batches`, the conversation's batches if the caller has read them, spares reading them again.
    """
    if batches is None:
        batches = recording_batches(conversation)
    return {
        "conversation_uuid": conversation.uuid,
        "clock_offset_ms": clock_offset(conversation),
        "start_ms": min((b.first_ts for b in batches), default=None),
        "end_ms": max((b.last_ts for b in batches), default=None),
        "batches": [
            [b.event_index, b.first_ts, b.last_ts, b.event_count, b.full_snapshots, b.segment]
            for b in batches
        ],
        "segments": [
            {key: s[key] for key in ("segment", "href", "first_ts", "last_ts", "first_event_index")}
            for s in segments(batches)
        ],
    }


def recording_events_json(
    conversation: Conversation,
    *,
    first_index: int,
    last_index: int,
    max_events: int,
    batches: list[BatchMeta] | None = None,
) -> tuple[bytes, int | None]:
    """Events of the batches from `first_index` on, as JSON array text, and where to go on.

    Stops after the batch that reaches `max_events` or at `last_index`; the second value is the
    next batch's event_index, or None when nothing follows. `batches`, all the conversation's
    batches if the caller has read them, spares reading them again.
    """
    if batches is None:
        batches = recording_batch_list(
            conversation.pk, first_index=first_index, last_index=last_index
        )
    else:
        batches = [b for b in batches if first_index <= b.event_index <= last_index]
    pieces: list[bytes] = []
    count = 0
    next_index: int | None = None
    for batch, events_json in events_json_each(batches):
        if count >= max_events:
            next_index = batch.event_index
            break
        inner = events_json.strip()[1:-1].strip()
        if inner:
            pieces.append(inner)
        count += batch.event_count
    return b"[" + b",".join(pieces) + b"]", next_index


# The first chunk a replay page plays: one batch from the start; from a live recording's last
# full snapshot, all that follows it.
FIRST_CHUNK_EVENTS = 400
LIVE_CHUNK_EVENTS = 20000


def first_chunk_bounds(batches: list[BatchMeta], *, live: bool) -> tuple[int, int, int]:
    """The first chunk a replay page plays: (from, to) event_index and a size bound.

    A closed recording starts at its first batch holding a full snapshot (nothing before one
    can be drawn); a live one at its last, replayed from the full snapshot before it. The page
    asks for the same chunk when it has none (replay.js, startRun).
    """
    if not live:
        first = next((batch for batch in batches if batch.full_snapshots), batches[0])
        return first.event_index, first.event_index, FIRST_CHUNK_EVENTS
    last = len(batches) - 1
    snapshot = next((i for i in range(last, -1, -1) if batches[i].full_snapshots), 0)
    size = LIVE_CHUNK_EVENTS if snapshot < last else FIRST_CHUNK_EVENTS
    return batches[snapshot].event_index, batches[last].event_index, size


def recording_chunk(
    conversation: Conversation,
    *,
    first: int,
    last: int,
    max_events: int,
    batches: list[BatchMeta] | None = None,
) -> dict:
    """Events of the batches from `first` to `last` (event_index) or `max_events`, and where
    the next chunk starts; what the recorded page loaded is served from us (see assets)."""
    events, next_index = recording_events_json(
        conversation, first_index=first, last_index=last, max_events=max_events, batches=batches
    )
    decoded = json.loads(events)
    rewrite_events(decoded)
    return {"next": next_index, "events": decoded}


def _live_batch(batch: BatchMeta, events_json: bytes) -> dict:
    """A batch as a live page adds it: its index entry, its page and its events."""
    return {
        "meta": [
            batch.event_index,
            batch.first_ts,
            batch.last_ts,
            batch.event_count,
            batch.full_snapshots,
            batch.segment,
        ],
        "href": batch.href or None,
        "events": _proxied_events(_json_loads(events_json)),
    }


def _json_loads(text: bytes) -> object:
    value = fastjson.loads(text)  # events are shown as they were sent: numbers kept exact
    return json.loads(text) if value is fastjson.MISS else value


def live_json(rows: dict) -> str:
    """A live message as the text a page is sent (orjson where it can, else the standard
    library: integers beyond 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(rows).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return json.dumps(rows, separators=(",", ":"))


def _live_payload(
    conversation: Conversation, *, offset_ms: int, batches: list[dict], items: list[dict]
) -> dict:
    """One message to a live page; updates and catch-ups have the same shape."""
    return {
        "conversation_uuid": conversation.uuid,
        "clock_offset_ms": offset_ms,
        "closed": conversation.closed,
        "batches": batches,
        "items": items,
    }


def _proxied_events(events: list) -> list:
    rewrite_events(events)  # what the recorded page loaded comes from us: see assets
    return events


# What a live update reads of each new batch: its fields and its events.
_LIVE_BATCH_FIELDS = tuple(dict.fromkeys((*BATCH_READ_FIELDS, *BATCH_FIELDS)))


def live_rows(
    *,
    conversation_uuid: str,
    rrweb_ids: list[int],
    message_ids: list[int],
    event_ids: list[int],
) -> dict | None:
    """The committed rows a live update names, shaped as the replay page shows them.

    The clock offset is the conversation's, written in the transaction that stored the rows.
    """
    wanted = {"rrweb": rrweb_ids, "message": message_ids, "event": event_ids}
    return live_rows_many({conversation_uuid: wanted}).get(conversation_uuid)


def live_rows_many(
    wanted: dict[str, dict[str, list[int]]], *, known_events: dict[int, bytes] | None = None
) -> dict[str, dict]:
    """live_rows for many conversations at once (uuid -> its "rrweb", "message" and "event"
    ids), in a handful of queries whatever their number; unknown conversations are left out.
    `known_events`: batches' events by row id, from whoever just stored them (committed),
    which are then not read back and decompressed.

    A row is only ever shown with the conversation it belongs to, whatever ids are asked for.
    """
    known_events = known_events or {}
    conversations = {
        c.pk: c
        for c in Conversation.objects.only("uuid", "closed", "clock_offset_ms").filter(
            uuid__in=list(wanted)
        )
    }

    def asked(kind: str) -> tuple[list[int], set[tuple[int, int]]]:
        pairs = {
            (conversation_id, row_id)
            for conversation_id, conversation in conversations.items()
            for row_id in wanted[conversation.uuid].get(kind, ())
        }
        return [row_id for _, row_id in pairs], pairs

    batches: dict[int, list[dict]] = defaultdict(list)
    ids, pairs = asked("rrweb")
    read: list[RRWebBatch] = []
    for known, fields in ((True, BATCH_FIELDS), (False, _LIVE_BATCH_FIELDS)):
        some = [row_id for row_id in ids if (row_id in known_events) == known]
        read += RRWebBatch.objects.only("conversation_id", *fields).filter(
            conversation_id__in=list(conversations), pk__in=some
        )
    read.sort(key=lambda batch: batch.event_index)
    for batch in read:
        if (batch.conversation_id, batch.pk) in pairs:
            events_json = known_events.get(batch.pk)
            if events_json is None:
                events_json = row_events_json(batch)
            batches[batch.conversation_id].append(_live_batch(row_meta(batch), events_json))
    items: dict[int, list[dict]] = defaultdict(list)
    ids, pairs = asked("message")
    messages = [
        m
        for m in Message.objects.filter(
            conversation_id__in=list(conversations), pk__in=ids
        ).prefetch_related("edits")
        if (m.conversation_id, m.pk) in pairs
    ]
    customers: dict[int, str] = {}
    if messages:
        people = Participant.objects.filter(
            conversation_id__in={m.conversation_id for m in messages}
        ).order_by("conversation_id", *_CUSTOMER_ORDER)
        for conversation_id, arn in people.values_list("conversation_id", "arn"):
            customers.setdefault(conversation_id, arn)
    for m in messages:
        offset_ms = clock_offset(conversations[m.conversation_id])
        customer = customers.get(m.conversation_id, "")
        items[m.conversation_id].append(message_item(m, offset_ms=offset_ms, customer_arn=customer))
    ids, pairs = asked("event")
    events = TimelineEvent.objects.filter(
        conversation_id__in=list(conversations), pk__in=ids
    ).exclude(event_type__in=_QUIET_EVENT_TYPES)
    for e in events:
        if (e.conversation_id, e.pk) in pairs:
            offset_ms = clock_offset(conversations[e.conversation_id])
            items[e.conversation_id].append(event_item(e, offset_ms=offset_ms))
    payloads = {}
    for conversation_id, conversation in conversations.items():
        mine = items[conversation_id]
        mine.sort(key=lambda item: (item["server_ms"] is None, item["server_ms"] or 0))
        payloads[conversation.uuid] = _live_payload(
            conversation,
            offset_ms=clock_offset(conversation),
            batches=batches[conversation_id],
            items=mine,
        )
    return payloads


def live_catch_up(conversation: Conversation, *, after_event_index: int | None) -> dict:
    """What a live page may have missed, shaped as a live update (`conversation` as
    conversation_get reads it).

    Batches after the last one the page holds (all of them for None), packed or not: a page
    only ever appends batches, so their event_index is an exact cursor. Message and event ids
    are not (an id is drawn before its transaction commits, so a lower one can commit after a
    higher one), and a transcript is small: it is sent whole and the page skips what it shows.
    """
    first = None if after_event_index is None else after_event_index + 1
    missed = recording_batch_list(conversation.pk, first_index=first)
    offset_ms = clock_offset(conversation)
    return _live_payload(
        conversation,
        offset_ms=offset_ms,
        batches=[_live_batch(b, events_json) for b, events_json in events_json_each(missed)],
        items=transcript_items(conversation, offset_ms=offset_ms),
    )


# What the replay page lists at most; the counters on Conversation say how many there are.
PAGE_ERRORS_LISTED = 500


def page_error_list(conversation: Conversation, *, limit: int = PAGE_ERRORS_LISTED) -> list[dict]:
    """The console entries and failed requests of a recording, in time order (ts: its clock)."""
    return list(
        PageError.objects.filter(conversation=conversation)
        .order_by("ts", "event_index", "position")
        .values("ts", "kind", "level", "message", "url", "method", "status", "duration_ms")[:limit]
    )
