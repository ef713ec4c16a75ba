"""Retention: delete conversations older than REPLAY_RETENTION_DAYS, never those on hold."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from conversations import conf
from conversations.audit import audit_record
from conversations.models import (
    AuditLog,
    Conversation,
    RecordingPack,
    RejectedFrame,
    RRWebBatch,
)


@dataclass
class PurgeResult:
    cutoff: datetime | None
    dry_run: bool
    purged: list[str] = field(default_factory=list)
    held: int = 0


def retention_cutoff(*, now: datetime | None = None) -> datetime | None:
    """Conversations last active before this are due; None when everything is kept."""
    days = conf.get("REPLAY_RETENTION_DAYS")
    if not days:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def purge_due(cutoff: datetime) -> QuerySet[Conversation]:
    """Conversations with no activity since `cutoff`, held ones included."""
    return Conversation.objects.filter(updated_at__lt=cutoff).order_by("id")


class LegalHoldError(Exception):
    """A conversation under legal hold was asked to be deleted."""


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation with everything it owns, its rejected frames included."""
    batches = RRWebBatch.objects.filter(conversation=conversation)
    # Bases are RESTRICT so a batch or pack is never left without its dictionary; here all of
    # them go, in one transaction, so unlinking them first is safe, and spares the collector
    # from loading every row to check who depends on whom.
    batches.exclude(base=None).update(base=None)
    batches.only("id").delete()
    packs = RecordingPack.objects.filter(conversation=conversation)
    packs.exclude(base=None).update(base=None)
    packs.only("id").delete()
    RejectedFrame.objects.filter(conversation_uuid=conversation.uuid).delete()
    conversation.delete()


@transaction.atomic
def conversation_remove(
    *, conversation: Conversation, user, request: HttpRequest | None = None, detail: str = ""
) -> None:
    """Delete a conversation at a staff member's request and audit it; never one on hold."""
    # Locked, so a hold set meanwhile is seen and wins.
    current = Conversation.objects.select_for_update().only("id", "uuid", "legal_hold")
    conversation = current.get(pk=conversation.pk)
    if conversation.legal_hold:
        raise LegalHoldError(f"{conversation.uuid} is under legal hold")
    uuid = conversation.uuid
    conversation_delete(conversation=conversation)
    audit_record(
        user=user, action=AuditLog.Action.DELETE, conversation=uuid, request=request, detail=detail
    )


def conversations_purge(*, dry_run: bool = False, now: datetime | None = None) -> PurgeResult:
    """Delete (or with dry_run, list) conversations past retention; audit each deletion."""
    cutoff = retention_cutoff(now=now)
    result = PurgeResult(cutoff=cutoff, dry_run=dry_run)
    if cutoff is None:
        return result
    due = purge_due(cutoff)
    result.held = due.filter(legal_hold=True).count()
    days = conf.get("REPLAY_RETENTION_DAYS")
    for conversation in due.filter(legal_hold=False).only("id", "uuid").iterator():
        result.purged.append(conversation.uuid)
        if dry_run:
            continue
        with transaction.atomic():
            conversation_delete(conversation=conversation)
            audit_record(
                user=None,
                action=AuditLog.Action.PURGE,
                conversation=conversation.uuid,
                detail=f"retention: no activity for {days} days (before {cutoff.isoformat()})",
            )
    return result
