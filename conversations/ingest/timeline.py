"""Timeline events (everything that is not a message or a batch) and the queue."""

from datetime import datetime

from conversations.ingest.items import Context, Item, Status, canonical_sha256
from conversations.ingest.sql import bump
from conversations.models import Conversation, Participant, QueueStatus, TimelineEvent
from conversations.protocol import (
    AddCoupon,
    AddItem,
    ConversationEventQueuePosition,
    ConversationEventTyping,
    ConversationSummary,
    ConversationWebchatQueueStatus,
    Envelope,
    QueueEntry,
    ReadMessage,
    WebchatContext,
    build_queue_position,
)


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
    digest = canonical_sha256(envelope.raw)
    if TimelineEvent.objects.filter(conversation=conversation, envelope_sha256=digest).exists():
        return Status.DUPLICATE
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
    bump(ctx, conversation, "event_total")
    ctx.notifications.append((conversation.uuid, {"kind": "event", "id": event.pk}))
    return Status.STORED


def queue_status_store(status: ConversationWebchatQueueStatus, item: Item) -> str:
    """Keep a queue status, unless it repeats the latest one word for word."""
    latest = QueueStatus.objects.order_by("-received_at", "-id").only("payload").first()
    if latest is not None and latest.payload == status.raw:
        return Status.DUPLICATE
    QueueStatus.objects.create(
        queue_name=status.queue_name or "",
        received_at=item.received_at,
        agent_available_count=status.agent_available_count,
        payload=status.raw,
    )
    return Status.STORED


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
