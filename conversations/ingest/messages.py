"""Messages and their edits, keyed by conversation_message_uuid."""

import logging

from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import F

from conversations.ingest.conversations import conversation_get_or_create
from conversations.ingest.items import (
    Context,
    Item,
    Outcome,
    Status,
    canonical_sha256,
    conflict,
)
from conversations.ingest.sql import bump, insert, insert_many, table
from conversations.models import Conversation, IngestKey, Message, MessageEdit
from conversations.protocol import ConversationMessage

logger = logging.getLogger(__name__)


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


def _message_row(
    conversation: Conversation,
    message: ConversationMessage,
    item: Item,
    source: IngestKey | None,
    digest: str,
) -> dict:
    """A message seen for the first time, as its row is inserted."""
    return {
        "conversation_id": conversation.pk,
        "message_uuid": message.conversation_message_uuid,
        "body": message.body or "",
        "original": message.raw,
        "original_sha256": digest,
        "received_at": item.received_at,
        "source_id": source.pk if source is not None else None,
        "edit_count": 0,
        **_message_fields(message),
    }


def message_store(
    ctx: Context, conversation: Conversation, message: ConversationMessage, item: Item
) -> str:
    """Store a `message` frame; the same message again is a no-op, a different one a conflict."""
    digest = canonical_sha256(message.raw)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, original_sha256 FROM {table(Message)} "
            "WHERE conversation_id = %s AND message_uuid = %s",
            [conversation.pk, message.conversation_message_uuid],
        )
        existing = cursor.fetchone()
    if existing is not None and existing[1]:
        if existing[1] == digest:
            return Status.DUPLICATE
        raise conflict(
            f"message {message.conversation_message_uuid} is already stored with different "
            "content; edits must come as 'updated message' events"
        )
    if existing is None:
        stored_id = insert(Message, _message_row(conversation, message, item, ctx.source, digest))
        bump(ctx, conversation, "message_total")
    else:
        # Its edits arrived first: keep their body, fill in the rest from the original.
        stored_id = existing[0]
        Message.objects.filter(pk=stored_id).update(
            original=message.raw, original_sha256=digest, **_message_fields(message)
        )
    ctx.notifications.append((conversation.uuid, {"kind": "message", "id": stored_id}))
    return Status.STORED


def message_edit_store(
    ctx: Context, conversation: Conversation, message: ConversationMessage, item: Item
) -> str:
    """Record an `updated message` as a new version of the message it edits."""
    digest = canonical_sha256(message.raw)
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
        bump(ctx, conversation, "message_total")
    elif MessageEdit.objects.filter(message=stored, payload_sha256=digest).exists():
        return Status.DUPLICATE
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
    return Status.STORED


# The bulk path for messages ----------------------------------------------------------------
#
# Most message frames carry a message seen for the first time: those of a group are checked
# with one query and inserted with one statement, instead of a savepoint, a query and an
# insert each. Anything else (a message already stored or edited first, the same message
# twice in a group, an insert that fails) is left to the per-frame path above, which knows
# every rule.


def messages_bulk_apply(items: list[Item], ctx: Context) -> dict[int, Outcome]:
    """Store first sightings of messages in bulk; return the outcomes of the items it handled.

    A failure of any kind leaves every message of the group to the per-frame path.
    """
    found: dict[str, list[int]] = {}
    edited: set[str] = set()  # their messages, if here too, go in frame order with the edits
    for number, item in enumerate(items):
        envelope = item.envelope
        if item.reject_kind or envelope is None:
            continue
        if envelope.event_type == "updated message":
            edited.add(getattr(envelope.payload, "conversation_message_uuid", None))
            continue
        message = envelope.message if envelope.type == "message" else None
        if message is None or not message.conversation_message_uuid:
            continue
        if envelope.conversation_uuid:
            found.setdefault(message.conversation_message_uuid, []).append(number)
    numbers = sorted(
        group[0] for uuid, group in found.items() if len(group) == 1 and uuid not in edited
    )
    if not numbers:
        return {}
    saved = ctx.save()
    try:
        with transaction.atomic():
            return _messages_bulk_apply([(n, items[n]) for n in numbers], ctx)
    except (IntegrityError, DataError):  # the per-frame path says which frame, and why
        ctx.restore(saved)
        return {}
    except DatabaseError:
        raise
    except Exception:  # the per-frame path stores or keeps aside each frame on its own
        logger.exception("bulk message path failed; storing these frame by frame")
        ctx.restore(saved)
        return {}


def _messages_bulk_apply(candidates: list[tuple[int, Item]], ctx: Context) -> dict[int, Outcome]:
    conversations = {}
    for _, item in candidates:
        envelope = item.envelope
        uuid = envelope.conversation_uuid
        conversations[uuid] = conversation_get_or_create(
            ctx, uuid=uuid, arn=envelope.conversation_arn
        )
    message_uuids = [item.envelope.message.conversation_message_uuid for _, item in candidates]
    marks = ", ".join(["%s"] * len(message_uuids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT conversation_id, message_uuid FROM {table(Message)} "
            f"WHERE message_uuid IN ({marks})",
            message_uuids,
        )
        stored = set(cursor.fetchall())
    rows, fresh = [], []
    for number, item in candidates:
        envelope = item.envelope
        message = envelope.message
        conversation = conversations[envelope.conversation_uuid]
        if (conversation.pk, message.conversation_message_uuid) in stored:
            continue  # a duplicate, a conflict or edits that came first: per frame
        source = item.source or ctx.source
        digest = canonical_sha256(message.raw)
        rows.append(_message_row(conversation, message, item, source, digest))
        fresh.append((number, item, conversation))
    if not rows:
        return {}
    ids = dict((key, id_) for id_, key in insert_many(Message, rows, key="message_uuid"))
    outcomes: dict[int, Outcome] = {}
    for number, item, conversation in fresh:
        bump(ctx, conversation, "message_total")
        if item.scrubbed:
            bump(ctx, conversation, "scrubbed_total", item.scrubbed)
        message_id = ids[item.envelope.message.conversation_message_uuid]
        ctx.notifications.append((conversation.uuid, {"kind": "message", "id": message_id}))
        outcomes[number] = Outcome(Status.STORED, conversation_uuid=conversation.uuid)
    return outcomes
