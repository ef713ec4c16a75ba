"""Apply a group of frames in one transaction, each frame in its own savepoint.

A frame that turns out to conflict is kept aside as a rejected frame without disturbing its
neighbours; a lost database connection rolls back the whole group, and the caller leaves the
frames where they were (the journal) to be applied again.
"""

import logging

from django.db import DatabaseError, DataError, IntegrityError, transaction

from conversations.ingest import parts
from conversations.ingest.batches import batch_store, rrweb_bulk_apply
from conversations.ingest.conversations import (
    conversation_get_or_create,
    conversation_summary_apply,
    conversations_prefetch,
    participant_merge,
)
from conversations.ingest.items import (
    Context,
    Item,
    Outcome,
    Rejection,
    Status,
    item_from_text,
    sha256_text,
)
from conversations.ingest.messages import (
    message_edit_store,
    message_store,
    messages_bulk_apply,
)
from conversations.ingest.rejections import guess_uuid, reject
from conversations.ingest.sql import bump, counters_write
from conversations.ingest.timeline import (
    queue_position_for,
    queue_status_store,
    timeline_event_store,
)
from conversations.live import live_notify
from conversations.models import Conversation, IngestKey, RejectedFrame
from conversations.protocol import (
    ConversationEventRRWeb,
    ConversationMessage,
    ConversationSummary,
    ConversationWebchatQueueStatus,
    Envelope,
    build_ping,
)
from conversations.storage import events_cache_clear

logger = logging.getLogger(__name__)


def items_apply(items: list[Item], *, source: IngestKey | None) -> list[Outcome]:
    """Store a group of items in one transaction and return one outcome per item, in order."""
    outcomes, notifications = items_store(items, source=source)
    live_notify(notifications)
    return outcomes


def items_store(
    items: list[Item], *, source: IngestKey | None, decoded: dict | None = None
) -> tuple[list[Outcome], list[tuple[str, dict]]]:
    """Like items_apply, but hand back the live notifications for the caller to send.

    Workers send them from their event loop once the transaction is committed. `decoded`
    holds batches decoded beforehand (batches_predecode), outside the transaction.
    """
    ctx = Context(source=source, decoded=decoded or {})
    outcomes: list[Outcome] = []
    try:
        with transaction.atomic():
            conversations_prefetch(ctx, items)
            done = rrweb_bulk_apply(items, ctx)
            done.update(messages_bulk_apply(items, ctx))
            for conversation, indexes in ctx.joined:
                parts.pending_clear(conversation, indexes)
            for number, item in enumerate(items):
                ctx.source = item.source or source
                outcome = done.get(number)
                outcomes.append(outcome if outcome is not None else _item_apply(item, ctx))
            counters_write(ctx)
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
        uuid = item.envelope.conversation_uuid if item.envelope else guess_uuid(item.text)
        reject(item, ctx, kind=item.reject_kind, reason=item.reject_reason or "", uuid=uuid)
        return Outcome(Status.REJECTED, item.reject_reason or "", uuid or "")
    envelope = item.envelope
    assert envelope is not None
    uuid = envelope.conversation_uuid or ""
    saved = ctx.save()
    try:
        try:
            with transaction.atomic():
                return _scrubbed_counted(_envelope_apply(envelope, item, ctx), item, ctx)
        except IntegrityError:
            # Another connection stored the same key between our check and our insert; now
            # that its row is visible, applying again finds a duplicate or a conflict.
            ctx.restore(saved)
            with transaction.atomic():
                return _scrubbed_counted(_envelope_apply(envelope, item, ctx), item, ctx)
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
    reject(item, ctx, kind=kind, reason=reason.strip(), uuid=uuid)
    return Outcome(Status.REJECTED, reason.strip(), uuid)


def _scrubbed_counted(outcome: Outcome, item: Item, ctx: Context) -> Outcome:
    """Count what scrubbing masked in a stored frame on its conversation."""
    if item.scrubbed and outcome.status == Status.STORED and outcome.conversation_uuid:
        conversation = ctx.conversations.get(outcome.conversation_uuid)
        if conversation is not None:
            bump(ctx, conversation, "scrubbed_total", item.scrubbed)
    return outcome


def _envelope_apply(envelope: Envelope, item: Item, ctx: Context) -> Outcome:
    uuid = envelope.conversation_uuid or ""
    if envelope.type == "ping":
        return Outcome(Status.STORED, reply=build_ping())
    if envelope.type == "check queue position":
        return Outcome(Status.STORED, conversation_uuid=uuid, reply=queue_position_for(uuid))
    if envelope.type == "message":
        conversation = conversation_get_or_create(ctx, uuid=uuid, arn=envelope.conversation_arn)
        status = message_store(ctx, conversation, envelope.message, item)
        return Outcome(status, conversation_uuid=uuid)
    event_type = envelope.event_type or ""
    payload = envelope.payload
    if event_type == "queue status update" and isinstance(payload, ConversationWebchatQueueStatus):
        queue_status_store(payload, item)
        if not uuid:
            return Outcome(Status.STORED)
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


def rrweb_store(
    ctx: Context, conversation: Conversation, event: ConversationEventRRWeb, item: Item
) -> str:
    """Store an rrweb batch, or one part of it until all its parts are here."""
    if event.is_multipart:
        return parts.part_store(ctx, conversation, event, item)
    digest = event.data_total_sha256 or event.data_sha256 or sha256_text(event.data)
    return batch_store(
        ctx,
        conversation,
        event_index=event.event_index,
        kind=event.type,
        text=event.data,
        digest=digest,
        received_at=item.received_at,
    )
