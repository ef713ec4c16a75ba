"""Services that store what sources send: one frame, or a group of frames in one transaction.

The consumer parses each frame (protocol.parse_frame) and hands this module a list of
`Item`s in arrival order. `items_apply` writes them all in one transaction, each frame in its
own savepoint, so a frame that turns out to conflict is kept aside as a rejected frame without
disturbing its neighbours, and a database failure rolls back the whole group: the consumer then
closes without acknowledging it, and the client re-sends.
"""

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import Count, F, Min, Sum
from django.utils import timezone

from conversations import conf, rrweb
from conversations.live import live_notify
from conversations.models import (
    Conversation,
    IngestKey,
    Message,
    MessageEdit,
    Participant,
    PendingPart,
    QueueStatus,
    RecordingPack,
    RejectedFrame,
    RRWebBatch,
    TimelineEvent,
)
from conversations.protocol import (
    AddCoupon,
    AddItem,
    ConversationEventQueuePosition,
    ConversationEventRRWeb,
    ConversationEventTyping,
    ConversationMessage,
    ConversationParticipant,
    ConversationSummary,
    ConversationWebchatQueueStatus,
    Envelope,
    ProtocolError,
    QueueEntry,
    ReadMessage,
    WebchatContext,
    build_ping,
    build_queue_position,
    parse_frame,
)
from conversations.selectors import (
    batch_sha256,
    events_cache_clear,
    events_json_by_id,
    pack_batches,
)

logger = logging.getLogger(__name__)

STORED = "stored"
DUPLICATE = "duplicate"
PENDING = "pending"
REJECTED = "rejected"


@dataclass(slots=True)
class Item:
    """One frame as received: its envelope when it parsed, else the rejection to keep."""

    text: str | None
    received_at: datetime
    size: int
    envelope: Envelope | None = None
    binary: bytes | None = None
    reject_kind: str | None = None
    reject_reason: str | None = None
    source: IngestKey | None = None  # who sent it, when a group mixes sources


@dataclass(slots=True)
class Outcome:
    """What became of one item, and the reply the source is owed for it, if any."""

    status: str
    reason: str = ""
    conversation_uuid: str = ""
    reply: dict | None = None


@dataclass
class Context:
    """State shared by the items of one group: the source, caches and counter deltas."""

    source: IngestKey | None
    conversations: dict[str, Conversation] = field(default_factory=dict)
    deltas: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    notifications: list[tuple[str, dict]] = field(default_factory=list)

    def save(self) -> tuple[int, dict[int, dict[str, int]]]:
        """What a savepoint may change here, to put back if it is rolled back."""
        return len(self.notifications), {pk: dict(d) for pk, d in self.deltas.items()}

    def restore(self, saved: tuple[int, dict[int, dict[str, int]]]) -> None:
        noted, deltas = saved
        del self.notifications[noted:]
        self.deltas.clear()
        self.deltas.update(deltas)
        # Cached rows may have been created or changed inside the rolled-back savepoint.
        self.conversations.clear()


def item_from_text(text: str, *, received_at: datetime | None = None) -> Item:
    """Parse one text frame into an Item, turning protocol errors into a rejection."""
    received_at = received_at or timezone.now()
    # Frames are mostly ASCII (JSON escapes the rest): then the length is the byte count,
    # known without copying the frame to encode it.
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    max_bytes = conf.get("REPLAY_MAX_FRAME_BYTES")
    if size > max_bytes:
        return Item(
            text=text,
            received_at=received_at,
            size=size,
            reject_kind=RejectedFrame.Kind.TOO_LARGE,
            reject_reason=f"frame is {size} bytes, over the limit of {max_bytes} bytes",
        )
    try:
        envelope = parse_frame(text)
    except ProtocolError as exc:
        return Item(
            text=text,
            received_at=received_at,
            size=size,
            reject_kind=RejectedFrame.Kind.INVALID,
            reject_reason=str(exc),
        )
    return Item(text=text, received_at=received_at, size=size, envelope=envelope)


def item_from_binary(data: bytes, *, received_at: datetime | None = None) -> Item:
    """Wrap a binary frame, which the protocol does not allow, as a rejection."""
    return Item(
        text=None,
        binary=data,
        received_at=received_at or timezone.now(),
        size=len(data),
        reject_kind=RejectedFrame.Kind.BINARY,
        reject_reason="binary frames are not part of the protocol: send each envelope as JSON text",
    )


def items_apply(items: list[Item], *, source: IngestKey | None) -> list[Outcome]:
    """Store a group of items in one transaction and return one outcome per item, in order."""
    outcomes, notifications = items_store(items, source=source)
    live_notify(notifications)
    return outcomes


def items_store(
    items: list[Item], *, source: IngestKey | None
) -> tuple[list[Outcome], list[tuple[str, dict]]]:
    """Like items_apply, but hand back the live notifications for the caller to send.

    The ingest socket sends them from its event loop: from this worker thread each send
    would cost a trip to another loop.
    """
    pending_expire()
    ctx = Context(source=source)
    outcomes: list[Outcome] = []
    try:
        with transaction.atomic():
            done = _rrweb_bulk_apply_safely(items, ctx)
            sources = {source.pk: source} if source is not None else {}
            for number, item in enumerate(items):
                ctx.source = item.source or source
                if ctx.source is not None:
                    sources[ctx.source.pk] = ctx.source
                outcome = done.get(number)
                outcomes.append(outcome if outcome is not None else _item_apply(item, ctx))
            _counters_write(ctx)
            if sources:
                IngestKey.objects.filter(pk__in=sources).update(last_used_at=timezone.now())
    except BaseException:
        # Ids handed out in a rolled-back transaction may be handed out again: forget
        # anything cached under them.
        events_cache_clear()
        raise
    return outcomes, ctx.notifications


def frame_apply(text: str, *, source: IngestKey | None = None) -> Outcome:
    """Parse and store one text frame in its own transaction."""
    return items_apply([item_from_text(text)], source=source)[0]


def _item_apply(item: Item, ctx: Context) -> Outcome:
    if item.reject_kind:
        uuid = item.envelope.conversation_uuid if item.envelope else _guess_uuid(item.text)
        _reject(item, ctx, kind=item.reject_kind, reason=item.reject_reason or "", uuid=uuid)
        return Outcome(REJECTED, item.reject_reason or "", uuid or "")
    envelope = item.envelope
    assert envelope is not None
    uuid = envelope.conversation_uuid or ""
    saved = ctx.save()
    try:
        try:
            with transaction.atomic():
                return _envelope_apply(envelope, item, ctx)
        except IntegrityError:
            # Another connection stored the same key between our check and our insert; now
            # that its row is visible, applying again finds a duplicate or a conflict.
            ctx.restore(saved)
            with transaction.atomic():
                return _envelope_apply(envelope, item, ctx)
    except Rejection as rejection:
        kind, reason = rejection.kind, rejection.reason
    except DataError as exc:
        # A value this database cannot hold, e.g. \u0000 in a string on PostgreSQL: only
        # this frame's savepoint is rolled back, and the frame is kept aside as sent.
        kind, reason = RejectedFrame.Kind.INVALID, f"the database cannot store a value: {exc}"
    except DatabaseError:
        raise
    except Exception as exc:  # a bug in a service must not lose the frame: keep it aside.
        logger.exception("failed to apply a frame; kept as rejected")
        kind = RejectedFrame.Kind.ERROR
        reason = f"server error while storing this frame: {type(exc).__name__}: {exc}"
    ctx.restore(saved)  # what the savepoint did is undone: so is what we noted of it
    _reject(item, ctx, kind=kind, reason=reason.strip(), uuid=uuid)
    return Outcome(REJECTED, reason.strip(), uuid)


class Rejection(Exception):
    """Raised inside a service to roll back its savepoint and keep the frame aside."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _conflict(reason: str) -> Rejection:
    return Rejection(RejectedFrame.Kind.CONFLICT, reason)


def _envelope_apply(envelope: Envelope, item: Item, ctx: Context) -> Outcome:
    uuid = envelope.conversation_uuid or ""
    if envelope.type == "ping":
        return Outcome(STORED, reply=build_ping())
    if envelope.type == "check queue position":
        return Outcome(STORED, conversation_uuid=uuid, reply=queue_position_for(uuid))
    if envelope.type == "message":
        conversation = conversation_get_or_create(ctx, uuid=uuid, arn=envelope.conversation_arn)
        status = message_store(ctx, conversation, envelope.message, item)
        return Outcome(status, conversation_uuid=uuid)
    event_type = envelope.event_type or ""
    payload = envelope.payload
    if event_type == "queue status update" and isinstance(payload, ConversationWebchatQueueStatus):
        queue_status_store(payload, item)
        if not uuid:
            return Outcome(STORED)
    if not uuid:
        # Only event types we do not model may come without a conversation: keep them raw.
        reason = f"event_type {event_type!r} without conversation_uuid is kept, not applied"
        raise Rejection(RejectedFrame.Kind.INVALID, reason)
    conversation = conversation_get_or_create(ctx, uuid=uuid, arn=envelope.conversation_arn)
    if event_type == "rrweb" and isinstance(payload, ConversationEventRRWeb):
        return Outcome(rrweb_store(ctx, conversation, payload, item), conversation_uuid=uuid)
    if event_type == "updated message" and isinstance(payload, ConversationMessage):
        status = message_edit_store(ctx, conversation, payload, item)
        return Outcome(status, conversation_uuid=uuid)
    if isinstance(payload, ConversationSummary):
        conversation_summary_apply(conversation, payload, event_type=event_type, item=item)
    if envelope.participant is not None:
        participant_merge(conversation, envelope.participant, event_type=event_type)
    status = timeline_event_store(ctx, conversation, envelope, item)
    return Outcome(status, conversation_uuid=uuid)


# Conversations and summaries ---------------------------------------------------------------


_CONVERSATION_FIELDS = (
    "id",
    "uuid",
    "arn",
    "summary_rank",
    "closed_dts",
    "merchant_id",
    "medium",
    "start_dts",
)


def conversation_get_or_create(ctx: Context, *, uuid: str, arn: str | None = None) -> Conversation:
    """Return the conversation `uuid`, creating it on first sight."""
    conversation = ctx.conversations.get(uuid)
    if conversation is None:
        # Only what the services read: compiling all thirty columns costs ~1 ms a query.
        conversation, _ = Conversation.objects.only(*_CONVERSATION_FIELDS).get_or_create(uuid=uuid)
        ctx.conversations[uuid] = conversation
    if arn and not conversation.arn:
        conversation.arn = arn
        Conversation.objects.filter(pk=conversation.pk).update(arn=arn)
    return conversation


def _rank(summary: ConversationSummary) -> str:
    # Summaries carry no version: the newer is the one with the later last message, then the
    # higher message count, then closed over open. Encoded as a string that sorts that way.
    moment = summary.last_message_dts or summary.start_dts
    stamp = moment.astimezone(UTC).strftime("%Y%m%d%H%M%S%f") if moment else "0" * 20
    return f"{stamp}|{summary.message_count or 0:010d}|{int(bool(summary.closed))}"


def conversation_summary_apply(
    conversation: Conversation, summary: ConversationSummary, *, event_type: str, item: Item
) -> bool:
    """Apply a summary unless the stored one is newer; return whether it was applied."""
    rank = _rank(summary)
    updates: dict = {}
    if event_type == "conversation closed" and conversation.closed_dts is None:
        updates["closed_dts"] = item.received_at
        updates["closed"] = True
    applied = rank >= conversation.summary_rank
    if applied:
        updates.update(
            summary=summary.raw,
            summary_rank=rank,
            arn=summary.conversation_arn or conversation.arn,
            merchant_id=summary.merchant_id or conversation.merchant_id,
            medium=summary.medium or conversation.medium,
            start_dts=summary.start_dts or conversation.start_dts,
            visible=summary.visible,
            unread_messages=summary.unread_messages,
            last_message_dts=summary.last_message_dts,
            last_interactive_message_dts=summary.last_interactive_message_dts,
            customer_first_message_unresponded_to_dts=(
                summary.customer_first_message_unresponded_to_dts
            ),
            last_message_body=summary.last_conversation_message_body or "",
            last_participant_arn=summary.last_conversation_participant_arn or "",
            last_participant_name=summary.last_conversation_participant_name or "",
            summary_message_count=summary.message_count,
            sentiment=summary.sentiment,
        )
        if summary.closed:
            updates["closed"] = True
            updates.setdefault("closed_dts", conversation.closed_dts or item.received_at)
        for participant in summary.participants:
            participant_merge(conversation, participant, event_type=event_type)
    if updates:
        updates["updated_at"] = timezone.now()
        for name, value in updates.items():
            setattr(conversation, name, value)
        Conversation.objects.filter(pk=conversation.pk).update(**updates)
    return applied


def _participant_key(participant: ConversationParticipant) -> str:
    return (
        participant.conversation_participant_arn
        or participant.conversation_participant_uuid
        or participant.conversation_participant_name
        or ""
    )


def participant_merge(
    conversation: Conversation, participant: ConversationParticipant, *, event_type: str = ""
) -> Participant | None:
    """Create or update a participant from what a frame says about them."""
    key = _participant_key(participant)
    if not key:
        return None
    values = {
        "arn": participant.conversation_participant_arn,
        "participant_uuid": participant.conversation_participant_uuid,
        "name": participant.conversation_participant_name,
        "email": participant.email,
        "sms_phone_number": participant.sms_phone_number,
        "profile_image_url": participant.profile_image_url,
        "language_iso_code": participant.language_iso_code,
        "timezone": participant.timezone,
        "status": participant.status,
        "joined_dts": participant.joined_dts,
        "left_dts": participant.left_dts,
        "last_message_dts": participant.last_message_dts,
        "unread_messages": participant.unread_messages,
    }
    present = {name: value for name, value in values.items() if value is not None}
    existing = Participant.objects.filter(conversation=conversation, key=key).first()
    if existing is None:
        return Participant.objects.create(
            conversation=conversation, key=key, raw=participant.raw, **present
        )
    for name, value in present.items():
        setattr(existing, name, value)
    existing.raw = {**existing.raw, **participant.raw}
    existing.updated_at = timezone.now()
    existing.save()
    return existing


# Messages ------------------------------------------------------------------------------------


def _canonical_sha256(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _message_fields(message: ConversationMessage) -> dict:
    return {
        "client_message_id": message.client_message_id or "",
        "author_arn": message.author_conversation_participant_arn or "",
        "author_name": message.author_conversation_participant_name or "",
        "message_type": message.message_type or "",
        "type": message.type or "",
        "language_iso_code": message.language_iso_code or "",
        "message_dts": message.message_dts,
        "message_epoch": message.message_epoch,
        "media_urls": list(message.media_urls),
        "translations": message.raw.get("translations") or [],
        "transport_statuses": message.raw.get("transport_statuses") or [],
    }


def message_store(
    ctx: Context, conversation: Conversation, message: ConversationMessage, item: Item
) -> str:
    """Store a `message` frame; the same message again is a no-op, a different one a conflict."""
    digest = _canonical_sha256(message.raw)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, original_sha256 FROM {_table(Message)} "
            "WHERE conversation_id = %s AND message_uuid = %s",
            [conversation.pk, message.conversation_message_uuid],
        )
        existing = cursor.fetchone()
    if existing is not None and existing[1]:
        if existing[1] == digest:
            return DUPLICATE
        raise _conflict(
            f"message {message.conversation_message_uuid} is already stored with different "
            "content; edits must come as 'updated message' events"
        )
    fields = _message_fields(message)
    if existing is None:
        stored_id = _insert(
            Message,
            {
                "conversation_id": conversation.pk,
                "message_uuid": message.conversation_message_uuid,
                "body": message.body or "",
                "original": message.raw,
                "original_sha256": digest,
                "received_at": item.received_at,
                "source_id": ctx.source.pk if ctx.source is not None else None,
                "edit_count": 0,
                **fields,
            },
        )
        _bump(ctx, conversation, "message_total")
    else:
        # Its edits arrived first: keep their body, fill in the rest from the original.
        stored_id = existing[0]
        Message.objects.filter(pk=stored_id).update(
            original=message.raw, original_sha256=digest, **fields
        )
    ctx.notifications.append((conversation.uuid, {"kind": "message", "id": stored_id}))
    return STORED


def message_edit_store(
    ctx: Context, conversation: Conversation, message: ConversationMessage, item: Item
) -> str:
    """Record an `updated message` as a new version of the message it edits."""
    digest = _canonical_sha256(message.raw)
    stored = Message.objects.filter(
        conversation=conversation, message_uuid=message.conversation_message_uuid
    ).first()
    if stored is None:
        stored = Message.objects.create(
            conversation=conversation,
            message_uuid=message.conversation_message_uuid,
            body=message.body or "",
            received_at=item.received_at,
            source=ctx.source,
            **_message_fields(message),
        )
        _bump(ctx, conversation, "message_total")
    elif MessageEdit.objects.filter(message=stored, payload_sha256=digest).exists():
        return DUPLICATE
    MessageEdit.objects.create(
        message=stored,
        body=message.body or "",
        payload=message.raw,
        payload_sha256=digest,
        received_at=item.received_at,
        source=ctx.source,
    )
    fields = {k: v for k, v in _message_fields(message).items() if v not in ("", None, [])}
    Message.objects.filter(pk=stored.pk).update(
        body=message.body or "", edit_count=F("edit_count") + 1, **fields
    )
    ctx.notifications.append((conversation.uuid, {"kind": "message", "id": stored.pk}))
    return STORED


# Timeline events and the queue -----------------------------------------------------------------


def _describe(envelope: Envelope) -> tuple[str, str, str, datetime | None]:
    """Return (actor arn, actor name, one-line summary, event time) for a timeline event."""
    payload = envelope.payload
    event_type = envelope.event_type or ""
    if isinstance(payload, ConversationEventTyping):
        name = payload.author_conversation_participant_name or "Someone"
        return (
            payload.author_conversation_participant_arn or "",
            payload.author_conversation_participant_name or "",
            f"{name} is typing: {payload.value or ''}".strip(),
            None,
        )
    if isinstance(payload, ConversationEventQueuePosition):
        where = "not in the queue" if payload.position == -1 else f"position {payload.position}"
        agents = "agents available" if payload.available else "no agent available"
        return "", "", f"Queue: {where}, {agents}", None
    if isinstance(payload, ConversationWebchatQueueStatus):
        waiting = payload.customer_waiting_count
        return "", "", f"Queue {payload.queue_name or ''}: {waiting} waiting".strip(), None
    if isinstance(payload, ReadMessage):
        return "", "", "Message read", payload.message_dts
    if isinstance(payload, AddCoupon):
        return (
            payload.agent_arn or "",
            payload.agent_name or "",
            f"{payload.agent_name or 'An agent'} added coupon {payload.coupon_code or ''}".strip(),
            None,
        )
    if isinstance(payload, AddItem):
        count = len(payload.items)
        items = f"{count} item{'s' * (count != 1)}"
        who = payload.agent_name or "An agent"
        return payload.agent_arn or "", payload.agent_name or "", f"{who} added {items}", None
    if isinstance(payload, WebchatContext):
        return "", "", f"Customer is on {payload.url or 'an unknown page'}", None
    if isinstance(payload, QueueEntry):
        who = payload.conversation_participant_name or "A customer"
        verb = "was engaged" if event_type == "engage customer" else "joined the queue"
        return (
            payload.conversation_participant_arn or "",
            payload.conversation_participant_name or "",
            f"{who} {verb}",
            payload.join_dts,
        )
    participant = envelope.participant
    if participant is not None:
        who = participant.conversation_participant_name or "A participant"
        verb = {"participant join": "joined", "participant left": "left"}.get(event_type, "changed")
        moment = (
            participant.left_dts if event_type == "participant left" else participant.joined_dts
        )
        return (
            participant.conversation_participant_arn or "",
            participant.conversation_participant_name or "",
            f"{who} {verb}",
            moment,
        )
    if isinstance(payload, ConversationSummary):
        label = {
            "new conversation": "Conversation started",
            "conversation closed": "Conversation closed",
            "new message": "New message",
            "participant update": "Participants updated",
            "participant join": "A participant joined",
            "participant left": "A participant left",
        }.get(event_type, event_type)
        return "", "", label, None
    if event_type == "webchat start conversation":
        return "", "", "Web chat started", None
    return "", "", f"Event {event_type!r}", None


def timeline_event_store(
    ctx: Context, conversation: Conversation, envelope: Envelope, item: Item
) -> str:
    """Add an event to the conversation's timeline unless the same frame is already there."""
    digest = _canonical_sha256(envelope.raw)
    if TimelineEvent.objects.filter(conversation=conversation, envelope_sha256=digest).exists():
        return DUPLICATE
    actor_arn, actor_name, summary, moment = _describe(envelope)
    event = TimelineEvent.objects.create(
        conversation=conversation,
        event_type=envelope.event_type or "",
        known=envelope.is_known_event,
        at=item.received_at,
        event_dts=moment,
        actor_arn=actor_arn,
        actor_name=actor_name,
        summary=summary[:500],
        envelope=envelope.raw,
        envelope_sha256=digest,
        source=ctx.source,
    )
    _bump(ctx, conversation, "event_total")
    ctx.notifications.append((conversation.uuid, {"kind": "event", "id": event.pk}))
    return STORED


def queue_status_store(status: ConversationWebchatQueueStatus, item: Item) -> str:
    """Keep a queue status, unless it repeats the latest one word for word."""
    latest = QueueStatus.objects.order_by("-received_at", "-id").only("payload").first()
    if latest is not None and latest.payload == status.raw:
        return DUPLICATE
    QueueStatus.objects.create(
        queue_name=status.queue_name or "",
        received_at=item.received_at,
        agent_available_count=status.agent_available_count,
        payload=status.raw,
    )
    return STORED


def queue_position_for(conversation_uuid: str) -> dict:
    """Answer `check queue position` from the newest stored queue status."""
    arns = set(
        Participant.objects.filter(conversation__uuid=conversation_uuid)
        .exclude(arn="")
        .values_list("arn", flat=True)
    )
    position, available = -1, False
    for index, status in enumerate(QueueStatus.objects.order_by("-received_at", "-id")[:20]):
        entries = status.payload.get("queue_entries") or []
        found = _queue_index(entries, conversation_uuid, arns)
        if index == 0:
            available = bool(status.agent_available_count)
        if found is not None:
            position = found
            available = bool(status.agent_available_count)
            break
        if index == 0 and not arns:
            break
    return build_queue_position(
        conversation_uuid=conversation_uuid, position=position, available=available
    )


def _queue_index(entries: list, conversation_uuid: str, arns: set[str]) -> int | None:
    waiting = [entry for entry in entries if isinstance(entry, dict)]
    waiting.sort(key=lambda entry: str(entry.get("join_dts") or ""))
    for number, entry in enumerate(waiting, start=1):
        if entry.get("conversation_webchat_queue_uuid") == conversation_uuid:
            return number
        if entry.get("conversation_participant_arn") in arns:
            return number
    return None


# rrweb batches ---------------------------------------------------------------------------------


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def rrweb_store(
    ctx: Context, conversation: Conversation, event: ConversationEventRRWeb, item: Item
) -> str:
    """Store an rrweb batch, or one part of it until all its parts are here."""
    if event.is_multipart:
        return _part_store(ctx, conversation, event, item)
    digest = event.data_total_sha256 or event.data_sha256 or _sha256_text(event.data)
    return batch_store(
        ctx,
        conversation,
        event_index=event.event_index,
        kind=event.type,
        text=event.data,
        digest=digest,
        received_at=item.received_at,
    )


def batch_store(
    ctx: Context,
    conversation: Conversation,
    *,
    event_index: int,
    kind: str,
    text: str,
    digest: str,
    received_at: datetime,
) -> str:
    """Decode, compress and store a whole batch; never overwrite a stored one."""
    # One query answers three questions: is this index stored already, which segment does
    # it continue, and which full-snapshot batch is its compression base. The nearest
    # stored batch at or below the index knows all three, since nothing lies between them.
    nearest = (
        RRWebBatch.objects.filter(conversation=conversation, event_index__lte=event_index)
        .order_by("-event_index")
        .values(
            "id", "event_index", "sha256", "segment", "full_snapshots", "base_id", "base__sha256"
        )
        .first()
    )
    if nearest is not None and nearest["event_index"] == event_index:
        _check_same(conversation, event_index, nearest["sha256"], digest)
        return DUPLICATE
    pack = _pack_at_or_below(conversation.pk, event_index)
    if pack is not None:
        packed = _packed_sha256(pack, event_index)
        if packed is not None:
            _check_same(conversation, event_index, packed, digest)
            return DUPLICATE
        if nearest is None or nearest["event_index"] < pack.last_event_index:
            # The nearest earlier batch is packed: continue its segment, compress alone.
            nearest = {"segment": pack.segment, "full_snapshots": 0, "base_id": None}
    try:
        decoded = rrweb.decode_batch(text, kind=kind)
    except rrweb.RRWebError as exc:
        raise Rejection(RejectedFrame.Kind.INVALID, str(exc)) from exc
    base_id, base_json = None, None
    if nearest is not None and not decoded.full_snapshots and "id" in nearest:
        if nearest["full_snapshots"]:
            base_id, base_sha = nearest["id"], nearest["sha256"]
        else:
            base_id, base_sha = nearest["base_id"], nearest["base__sha256"]
        if base_id is not None:
            base_json = events_json_by_id(base_id, base_sha)
    blob = rrweb.compress(decoded.events_json, base=base_json, level=conf.get("REPLAY_ZSTD_LEVEL"))
    segment = (nearest["segment"] if nearest else 0) + (kind == RRWebBatch.KIND_INIT)
    batch = RRWebBatch.objects.create(
        conversation=conversation,
        event_index=event_index,
        kind=kind,
        segment=segment,
        first_ts=decoded.first_ts,
        last_ts=decoded.last_ts,
        event_count=decoded.count,
        full_snapshots=decoded.full_snapshots,
        href=decoded.href or "",
        raw_size=len(text.encode("utf-8", "surrogatepass")),
        sha256=digest,
        stored_size=len(blob),
        data=blob,
        base_id=base_id,
        received_at=received_at,
        source=ctx.source,
    )
    if kind == RRWebBatch.KIND_INIT:
        # An init that arrives after later batches starts their segment: renumber them. (A
        # pack spanning the init keeps its number: packs are of finished page loads, so an
        # init arriving inside one would be one that came very late; its batches stay whole.)
        RRWebBatch.objects.filter(conversation=conversation, event_index__gt=event_index).update(
            segment=F("segment") + 1
        )
        RecordingPack.objects.filter(
            conversation=conversation, first_event_index__gt=event_index
        ).update(segment=F("segment") + 1)
    _bump(ctx, conversation, "rrweb_batch_total")
    _bump(ctx, conversation, "rrweb_event_total", decoded.count)
    _extend(ctx, conversation, decoded.first_ts, decoded.last_ts)
    ctx.notifications.append((conversation.uuid, {"kind": "rrweb", "id": batch.pk}))
    return STORED


def _check_same(conversation: Conversation, event_index: int, stored: str, digest: str) -> None:
    """Raise a conflict unless the stored batch at event_index has this content."""
    if stored != digest:
        raise _conflict(
            f"event_index {event_index} of conversation {conversation.uuid} is already stored "
            f"with different content (sha256 {stored[:12]}…, this frame {digest[:12]}…)"
        )


def _pack_at_or_below(conversation_id: int, event_index: int) -> RecordingPack | None:
    """The pack holding or last before event_index, if any (without its data)."""
    return (
        RecordingPack.objects.filter(
            conversation_id=conversation_id, first_event_index__lte=event_index
        )
        .order_by("-first_event_index")
        .defer("data")
        .first()
    )


def _packed_sha256(pack: RecordingPack, event_index: int) -> str | None:
    """The sha256 of the batch at event_index in `pack`, or None if the pack lacks it."""
    if not pack.first_event_index <= event_index <= pack.last_event_index:
        return None
    for batch in pack_batches(pack):
        if batch.event_index == event_index:
            return batch_sha256(batch)
    return None


def stored_sha256(conversation: Conversation, event_index: int) -> str | None:
    """The sha256 of the stored batch at event_index, in a row or a pack, or None."""
    row = (
        RRWebBatch.objects.filter(conversation_id=conversation.pk, event_index=event_index)
        .values_list("sha256", flat=True)
        .first()
    )
    if row is not None:
        return row
    pack = _pack_at_or_below(conversation.pk, event_index)
    return _packed_sha256(pack, event_index) if pack is not None else None


# The bulk path for rrweb batches ------------------------------------------------------------
#
# Most frames are rrweb batches appended to the end of their recording: whole, or all parts
# in one group. Those are checked in memory and inserted with one statement per group, which
# is what keeps ingest close to the speed of reading the socket. Anything else (a batch below
# what is stored, parts still incomplete, anything that fails a check) is left to the
# per-frame path above, which knows every rule.


@dataclass
class _Candidate:
    numbers: list[int]  # the items (frames) that carried this batch
    uuid: str
    event_index: int
    kind: str
    text: str
    digest: str
    received_at: datetime
    duplicates: list[int] = field(default_factory=list)


def _rrweb_candidates(items: list[Item]) -> dict[str, list[_Candidate]]:
    """Whole batches in this group, by conversation: single frames and completed parts."""
    whole: dict[tuple[str, int], _Candidate] = {}
    parts: dict[tuple[str, int], dict[int, tuple[int, ConversationEventRRWeb]]] = {}
    refused: set[tuple[str, int]] = set()
    for number, item in enumerate(items):
        envelope = item.envelope
        if item.reject_kind or envelope is None or envelope.event_type != "rrweb":
            continue
        event = envelope.payload
        uuid = envelope.conversation_uuid
        if not isinstance(event, ConversationEventRRWeb) or not uuid:
            continue
        key = (uuid, event.event_index)
        if event.is_multipart:
            received = parts.setdefault(key, {})
            if event.data_part in received:
                refused.add(key)  # a part twice in one group: let the careful path sort it
            received[event.data_part] = (number, event)
            continue
        digest = event.data_total_sha256 or event.data_sha256 or _sha256_text(event.data)
        if key in whole:
            if whole[key].digest == digest:
                whole[key].duplicates.append(number)
            else:
                refused.add(key)
            continue
        whole[key] = _Candidate(
            [number], uuid, event.event_index, event.type, event.data, digest, item.received_at
        )
    for key, received in parts.items():
        events = [event for _, event in received.values()]
        first = events[0]
        shape = {(e.data_total_parts, e.data_total_sha256, e.type) for e in events}
        if key in whole or len(shape) != 1 or len(received) != first.data_total_parts:
            refused.add(key)
            continue
        text = "".join(received[number][1].data for number in sorted(received))
        if _sha256_text(text) != first.data_total_sha256:
            refused.add(key)
            continue
        numbers = [number for number, _ in received.values()]
        whole[key] = _Candidate(
            numbers,
            key[0],
            key[1],
            first.type,
            text,
            first.data_total_sha256 or "",
            items[max(numbers)].received_at,
        )
    by_conversation: dict[str, list[_Candidate]] = defaultdict(list)
    for key, candidate in whole.items():
        if key not in refused:
            by_conversation[candidate.uuid].append(candidate)
    return by_conversation


def _rrweb_bulk_apply_safely(items: list[Item], ctx: Context) -> dict[int, Outcome]:
    """The bulk path, falling back to the per-frame path for all if it fails for a bug."""
    saved = ctx.save()
    try:
        with transaction.atomic():
            return _rrweb_bulk_apply(items, ctx)
    except DatabaseError:
        raise
    except Exception:  # the per-frame path stores or keeps aside each frame on its own
        logger.exception("bulk rrweb path failed; storing this group frame by frame")
        ctx.restore(saved)
        return {}


class _ConversationRef:
    """Just enough of a conversation for the bulk path: its key and uuid."""

    __slots__ = ("pk", "uuid")

    def __init__(self, pk: int, uuid: str) -> None:
        self.pk = pk
        self.uuid = uuid


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _conversation_ref(ctx: Context, uuid: str) -> _ConversationRef:
    known = ctx.conversations.get(uuid)
    if known is not None:
        return _ConversationRef(known.pk, uuid)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {_table(Conversation)} WHERE uuid = %s", [uuid])
        row = cursor.fetchone()
    if row is None:
        return _ConversationRef(conversation_get_or_create(ctx, uuid=uuid).pk, uuid)
    return _ConversationRef(row[0], uuid)


_LAST_BATCH_SQL = """
    SELECT b.id, b.event_index, b.sha256, b.segment, b.full_snapshots, b.base_id, base.sha256
    FROM {batch} b LEFT JOIN {batch} base ON base.id = b.base_id
    WHERE b.conversation_id = %s ORDER BY b.event_index DESC LIMIT 1
"""


def _insert(model: type, values: dict) -> int:
    """Insert one row and return its id, the way the ORM would write each value.

    Used on the hot paths: compiling an ORM insert costs ~1 ms a row here, the SQL ~20 us.
    """
    fields = [model._meta.get_field(name) for name in values]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    marks = ", ".join(["%s"] * len(fields))
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(model)} ({columns}) VALUES ({marks}) RETURNING id", params
        )
        return cursor.fetchone()[0]


_BATCH_COLUMNS = (
    "conversation_id",
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
    "stored_size",
    "data",
    "base_id",
    "received_at",
    "source_id",
)


def _batch_insert(values: dict) -> int:
    """Insert one rrweb batch row and return its id."""
    return _insert(RRWebBatch, {column: values[column] for column in _BATCH_COLUMNS})


def _rrweb_bulk_apply(items: list[Item], ctx: Context) -> dict[int, Outcome]:
    """Store appended rrweb batches in bulk; return the outcomes of the items it handled."""
    outcomes: dict[int, Outcome] = {}
    level = conf.get("REPLAY_ZSTD_LEVEL")
    for uuid, candidates in _rrweb_candidates(items).items():
        conversation = _conversation_ref(ctx, uuid)
        saved = ctx.save()
        with connection.cursor() as cursor:
            cursor.execute(_LAST_BATCH_SQL.format(batch=_table(RRWebBatch)), [conversation.pk])
            last = cursor.fetchone()
            cursor.execute(
                f"SELECT last_event_index, segment FROM {_table(RecordingPack)} "
                "WHERE conversation_id = %s ORDER BY last_event_index DESC LIMIT 1",
                [conversation.pk],
            )
            pack = cursor.fetchone()
        if pack is not None and (last is None or pack[0] > last[1]):
            # The recording's end is packed: continue its segment, with no base in a row.
            last = (None, pack[0], "", pack[1], 0, None, None)
        floor = last[1] if last else -1
        appended = sorted(
            (c for c in candidates if c.event_index > floor), key=lambda c: c.event_index
        )
        if not appended:
            continue
        segment = last[3] if last else 0
        # The compression base: (id or None while it is a row of this group, sha256, events).
        base: tuple[int | None, str, bytes | None] | None = None
        if last is not None and last[0] is not None:
            if last[4]:
                base = (last[0], last[2], None)
            elif last[5] is not None:
                base = (last[5], last[6], None)
        rows: list[tuple[_Candidate, dict]] = []
        for candidate in appended:
            try:
                decoded = rrweb.decode_batch(candidate.text, kind=candidate.kind)
            except rrweb.RRWebError:
                break  # the per-frame path rejects it; later batches follow it there
            segment += candidate.kind == RRWebBatch.KIND_INIT
            source = items[candidate.numbers[0]].source or ctx.source
            row = {
                "conversation_id": conversation.pk,
                "event_index": candidate.event_index,
                "kind": candidate.kind,
                "segment": segment,
                "first_ts": decoded.first_ts,
                "last_ts": decoded.last_ts,
                "event_count": decoded.count,
                "full_snapshots": decoded.full_snapshots,
                "href": decoded.href or "",
                "raw_size": len(candidate.text.encode("utf-8", "surrogatepass")),
                "sha256": candidate.digest,
                "received_at": candidate.received_at,
                "source_id": source.pk if source is not None else None,
                "base_id": None,
                "base_row": None,
            }
            if decoded.full_snapshots:
                row["data"] = rrweb.compress(decoded.events_json, level=level)
                base = (None, candidate.digest, decoded.events_json)
                row["anchor"] = row
            else:
                if base is not None and base[2] is None:
                    base = (base[0], base[1], events_json_by_id(base[0], base[1]))
                row["data"] = rrweb.compress(
                    decoded.events_json, base=base[2] if base else None, level=level
                )
                row["base_id"] = base[0] if base else None
                row["base_row"] = rows[-1][1]["anchor"] if base and base[0] is None else None
                row["anchor"] = rows[-1][1]["anchor"] if rows else None
            row["stored_size"] = len(row["data"])
            rows.append((candidate, row))
            _bump(ctx, conversation, "rrweb_batch_total")
            _bump(ctx, conversation, "rrweb_event_total", decoded.count)
            _extend(ctx, conversation, decoded.first_ts, decoded.last_ts)
        if not rows:
            continue
        try:
            with transaction.atomic():
                for _, row in rows:
                    if row["base_row"] is not None:
                        row["base_id"] = row["base_row"]["id"]
                    row["id"] = _batch_insert(row)
        except IntegrityError:
            # Another connection stored one of these meanwhile: the per-frame path decides.
            ctx.restore(saved)
            continue
        for candidate, row in rows:
            for number in candidate.numbers:
                outcomes[number] = Outcome(STORED, conversation_uuid=uuid)
            for number in candidate.duplicates:
                outcomes[number] = Outcome(DUPLICATE, conversation_uuid=uuid)
            ctx.notifications.append((uuid, {"kind": "rrweb", "id": row["id"]}))
        joined = [c.event_index for c, _ in rows if len(c.numbers) > 1]
        if joined:
            _pending_clear(conversation, joined)
    return outcomes


def _pending_clear(conversation: _ConversationRef, indexes: list[int]) -> None:
    """Parts of a batch that is now stored whole: matching ones go, others are kept aside."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {_table(PendingPart)} WHERE conversation_id = %s LIMIT 1",
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
        _parts_reject(
            Context(source=None),
            different,
            kind=RejectedFrame.Kind.CONFLICT,
            reason="parts of a batch whose event_index is now stored with different content",
        )


# Multi-part batches ------------------------------------------------------------------------------


# The data of parts this process stored, so joining them needs no read back and re-parse.
# A part missing here (another process, a restart) is read from the database instead.
_PART_DATA: dict[tuple[int, int, int, str], str] = {}
_PART_DATA_LIMIT = 1024


def _part_store(
    ctx: Context, conversation: Conversation, event: ConversationEventRRWeb, item: Item
) -> str:
    index = event.event_index
    total_sha = event.data_total_sha256 or ""
    stored = stored_sha256(conversation, index)
    if stored is not None:
        if stored == total_sha:
            return DUPLICATE
        raise _conflict(
            f"event_index {index} of conversation {conversation.uuid} is already stored with "
            f"different content (sha256 {stored[:12]}…, this part's batch {total_sha[:12]}…)"
        )
    siblings = list(
        PendingPart.objects.filter(conversation=conversation, event_index=index).only(
            "id", "part", "total_parts", "total_sha256", "sha256", "kind"
        )
    )
    part_sha = event.data_sha256 or _sha256_text(event.data)
    for sibling in siblings:
        if (sibling.total_parts, sibling.total_sha256, sibling.kind) != (
            event.data_total_parts,
            total_sha,
            event.type,
        ):
            raise _conflict(
                f"part {event.data_part} of event_index {index} disagrees with parts already "
                f"received: data_total_parts {event.data_total_parts} vs {sibling.total_parts}, "
                f"data_total_sha256 {total_sha[:12]}… vs {sibling.total_sha256[:12]}…, "
                f"type {event.type!r} vs {sibling.kind!r}"
            )
        if sibling.part == event.data_part:
            if sibling.sha256 == part_sha:
                return DUPLICATE
            raise _conflict(
                f"part {event.data_part} of event_index {index} was already received with "
                "different data"
            )
    _PART_DATA[(conversation.pk, index, event.data_part, part_sha)] = event.data
    if len(_PART_DATA) > _PART_DATA_LIMIT:
        _PART_DATA.pop(next(iter(_PART_DATA)))
    PendingPart.objects.create(
        conversation=conversation,
        event_index=index,
        kind=event.type,
        part=event.data_part,
        total_parts=event.data_total_parts,
        total_sha256=total_sha,
        sha256=part_sha,
        text=item.text or "",
        size=len(event.data.encode("utf-8", "surrogatepass")),
        received_at=item.received_at,
        source=ctx.source,
    )
    if len(siblings) + 1 < event.data_total_parts:
        _pending_bound(conversation)
        return PENDING
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
        data = _PART_DATA.pop((conversation.pk, index, part.part, part.sha256), None)
        if data is None:  # stored by another process, or before a restart: read it back
            payload = parse_frame(part.text).payload
            assert isinstance(payload, ConversationEventRRWeb)
            data = payload.data
        datas.append(data)
    text = "".join(datas)
    actual = _sha256_text(text)
    if actual != total_sha:
        reason = (
            f"the {len(parts)} parts of event_index {index} joined have sha256 {actual}, "
            f"not data_total_sha256 {total_sha}"
        )
        _parts_reject(ctx, parts, kind=RejectedFrame.Kind.INVALID, reason=reason)
        return REJECTED
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
        _parts_reject(ctx, parts, kind=rejection.kind, reason=rejection.reason)
        return REJECTED
    PendingPart.objects.filter(pk__in=[p.pk for p in parts]).delete()
    return status


def _parts_reject(ctx: Context, parts: Iterable[PendingPart], *, kind: str, reason: str) -> None:
    parts = list(parts)
    for part in parts:
        item = Item(text=part.text, received_at=part.received_at, size=len(part.text.encode()))
        _reject(
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
    """Evict the oldest incomplete batches while the pending limits are exceeded."""
    per_count = conf.get("REPLAY_PENDING_MAX_BATCHES_PER_CONVERSATION")
    per_bytes = conf.get("REPLAY_PENDING_MAX_BYTES_PER_CONVERSATION")
    all_bytes = conf.get("REPLAY_PENDING_MAX_BYTES")
    groups = _pending_groups(PendingPart.objects.filter(conversation=conversation))
    while len(groups) > per_count or sum(g["bytes"] for g in groups) > per_bytes:
        victim = groups.pop(0)
        _pending_evict(
            victim,
            f"evicted: conversation {conversation.uuid} had more than {per_count} incomplete "
            f"batches or {per_bytes} bytes waiting for parts",
        )
    total = PendingPart.objects.aggregate(total=Sum("size"))["total"] or 0
    if total > all_bytes:
        for victim in _pending_groups(PendingPart.objects.all()):
            if total <= all_bytes:
                break
            total -= victim["bytes"]
            _pending_evict(
                victim,
                f"evicted: more than {all_bytes} bytes of incomplete batches were waiting",
            )


def _pending_evict(group: dict, reason: str, kind: str = RejectedFrame.Kind.EVICTED) -> None:
    parts = PendingPart.objects.filter(
        conversation_id=group["conversation_id"], event_index=group["event_index"]
    ).select_related("conversation", "source")
    ctx = Context(source=None)
    _parts_reject(ctx, parts, kind=kind, reason=reason)


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


# Rejections and counters -------------------------------------------------------------------------


def _guess_uuid(text: str | None) -> str:
    if not text or len(text) > 4 * 1024 * 1024:
        return ""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return ""
    uuid = value.get("conversation_uuid") if isinstance(value, dict) else None
    return uuid[:100] if isinstance(uuid, str) else ""


def _reject(
    item: Item,
    ctx: Context,
    *,
    kind: str,
    reason: str,
    uuid: str | None,
    source: IngestKey | None = None,
) -> RejectedFrame:
    source = source or ctx.source
    keep = conf.get("REPLAY_REJECTED_KEEP_BYTES")
    text = item.text or ""
    binary = item.binary
    truncated = False
    if text and item.size > keep:
        text = text.encode("utf-8", "surrogatepass")[:keep].decode("utf-8", "ignore")
        truncated = True
    if binary is not None and len(binary) > keep:
        binary = binary[:keep]
        truncated = True
    whole = (
        item.binary
        if item.binary is not None
        else (item.text or "").encode("utf-8", "surrogatepass")
    )
    safe_text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    if binary is None and safe_text != text:
        binary = whole[:keep]  # the text column gets a readable copy, this the exact bytes
    return RejectedFrame.objects.create(
        kind=kind,
        reason=reason,
        received_at=item.received_at,
        source=source,
        source_name=source.name if source else "",
        conversation_uuid=(uuid or "")[:100],
        text=safe_text,
        binary=binary,
        size=item.size,
        truncated=truncated,
        sha256=hashlib.sha256(whole).hexdigest(),
    )


def _bump(ctx: Context, conversation: Conversation, name: str, amount: int = 1) -> None:
    deltas = ctx.deltas[conversation.pk]
    deltas[name] = deltas.get(name, 0) + amount


def _extend(ctx: Context, conversation: Conversation, first_ts: int, last_ts: int) -> None:
    deltas = ctx.deltas[conversation.pk]
    deltas["start"] = min(deltas.get("start", first_ts), first_ts)
    deltas["end"] = max(deltas.get("end", last_ts), last_ts)


def _counters_write(ctx: Context) -> None:
    """Add up each conversation's counters in one UPDATE each."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    for pk, deltas in ctx.deltas.items():
        sets = ["updated_at = %s"]
        params: list = [now]
        for name, amount in deltas.items():
            if name == "start":
                sets.append(
                    "recording_start_ms = CASE WHEN recording_start_ms IS NULL "
                    "OR recording_start_ms > %s THEN %s ELSE recording_start_ms END"
                )
                params += [amount, amount]
            elif name == "end":
                sets.append(
                    "recording_end_ms = CASE WHEN recording_end_ms IS NULL "
                    "OR recording_end_ms < %s THEN %s ELSE recording_end_ms END"
                )
                params += [amount, amount]
            else:
                column = connection.ops.quote_name(name)
                sets.append(f"{column} = {column} + %s")
                params.append(amount)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {_table(Conversation)} SET {', '.join(sets)} WHERE id = %s", [*params, pk]
            )


__all__ = [
    "DUPLICATE",
    "PENDING",
    "REJECTED",
    "STORED",
    "Item",
    "Outcome",
    "frame_apply",
    "item_from_binary",
    "item_from_text",
    "items_apply",
    "pending_expire",
    "queue_position_for",
]
