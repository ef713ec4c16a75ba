"""Conversations, their summaries and participants."""

from datetime import UTC

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from conversations.ingest.items import Context, Item
from conversations.ingest.sql import insert
from conversations.models import Conversation, Participant
from conversations.protocol import ConversationParticipant, ConversationSummary

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
        conversation = _conversation_create(uuid)
        ctx.conversations[uuid] = conversation
    if arn and not conversation.arn:
        conversation.arn = arn
        Conversation.objects.filter(pk=conversation.pk).update(arn=arn)
    return conversation


def _conversation_create(uuid: str) -> Conversation:
    """Create the conversation `uuid`, or load it if it exists after all.

    Not the ORM's get_or_create: its savepoint, query and insert of thirty columns cost
    ~3 ms, several times what storing a frame does, and conversations_prefetch has already
    loaded the group's stored conversations.
    """
    conversation = Conversation(uuid=uuid)
    values = {
        field.attname: field.pre_save(conversation, True)
        for field in Conversation._meta.local_concrete_fields
        if not field.primary_key
    }
    pk = insert(Conversation, values, unless_taken="uuid")
    if pk is None:
        # Only what the services read: compiling all thirty columns costs ~1 ms a query.
        return Conversation.objects.only(*_CONVERSATION_FIELDS).get(uuid=uuid)
    conversation.pk = pk
    conversation._state.adding = False
    conversation._state.db = DEFAULT_DB_ALIAS
    return conversation


def conversations_prefetch(ctx: Context, items: list[Item]) -> None:
    """Load the stored conversations `items` name into the context, in one query a few hundred.

    A round of the worker names up to 32 conversations; asked one by one, through the ORM,
    each would cost a query and its compilation (~1 ms) for every message among the frames.
    """
    uuids = sorted(
        {
            item.envelope.conversation_uuid
            for item in items
            if item.envelope is not None and item.envelope.conversation_uuid
        }
        - ctx.conversations.keys()
    )
    for start in range(0, len(uuids), 500):
        for conversation in Conversation.objects.only(*_CONVERSATION_FIELDS).filter(
            uuid__in=uuids[start : start + 500]
        ):
            ctx.conversations[conversation.uuid] = conversation


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
