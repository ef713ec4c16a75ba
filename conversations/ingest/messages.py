"""Messages and their edits, keyed by conversation_message_uuid."""

from django.db import connection
from django.db.models import F

from conversations.ingest.items import Context, Item, Status, canonical_sha256, conflict
from conversations.ingest.sql import bump, insert, table
from conversations.models import Conversation, Message, MessageEdit
from conversations.protocol import ConversationMessage


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
    fields = _message_fields(message)
    if existing is None:
        stored_id = insert(
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
        bump(ctx, conversation, "message_total")
    else:
        # Its edits arrived first: keep their body, fill in the rest from the original.
        stored_id = existing[0]
        Message.objects.filter(pk=stored_id).update(
            original=message.raw, original_sha256=digest, **fields
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
