"""Retention: delete conversations older than REPLAY_RETENTION_DAYS, and rejected frames past
their own age and byte budget; never what belongs to a conversation under legal hold. Shared
compression dictionaries go once no pack uses them."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Window,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone

from conversations import conf
from conversations.audit import audit_record
from conversations.models import (
    AuditLog,
    Conversation,
    RecordingDictionary,
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
    dictionaries: int = 0


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
        if not dry_run:
            result.dictionaries = dictionaries_purge()
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
    if not dry_run:
        result.dictionaries = dictionaries_purge()
    return result


def dictionaries_purge() -> int:
    """Delete the shared dictionaries no pack uses any more, except the newest (the one new
    packs take); return how many. A dictionary holds only what many conversations' pages
    share, and goes with the last conversation compressed against it."""
    newest = RecordingDictionary.objects.values_list("pk", flat=True).first()
    used = RecordingPack.objects.filter(dictionary_id=OuterRef("pk"))
    unused = RecordingDictionary.objects.exclude(pk=newest).exclude(Exists(used))
    return unused.delete()[0]


# --- Rejected frames ----------------------------------------------------------------------------
# They are kept for review, not forever: the public door can fill the table with garbage at
# line rate. Age and a byte budget bound them; those of conversations under legal hold stay.


class OctetLength(Func):
    """Bytes of a text or binary column (SQLite's LENGTH counts characters of text)."""

    function = "OCTET_LENGTH"
    output_field = BigIntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))", **extra
        )


@dataclass
class RejectedPurgeResult:
    dry_run: bool
    cutoff: datetime | None
    max_bytes: int | None
    expired: int = 0
    expired_bytes: int = 0
    over_budget: int = 0
    over_budget_bytes: int = 0
    held: int = 0

    @property
    def deleted(self) -> int:
        return self.expired + self.over_budget


def _held_uuids() -> QuerySet[Conversation]:
    return Conversation.objects.filter(legal_hold=True).values("uuid")


def rejected_frames_purgeable() -> QuerySet[RejectedFrame]:
    """Rejected frames retention may delete (all but those of conversations under legal
    hold), each annotated with the bytes it stores."""
    return RejectedFrame.objects.exclude(conversation_uuid__in=_held_uuids()).annotate(
        stored_bytes=Coalesce(OctetLength("text"), 0) + Coalesce(OctetLength("binary"), 0)
    )


def _over_budget(frames: QuerySet[RejectedFrame], max_bytes: int) -> QuerySet[RejectedFrame]:
    """The oldest frames beyond the newest ones whose stored bytes add up to max_bytes."""
    newest_first = [F("received_at").desc(), F("id").desc()]
    running = frames.annotate(running=Window(Sum("stored_bytes"), order_by=newest_first)).filter(
        running__gt=max_bytes
    )
    first = running.order_by(*newest_first).values("received_at", "id").first()
    if first is None:
        return frames.none()
    at, pk = first["received_at"], first["id"]
    return frames.filter(Q(received_at__lt=at) | Q(received_at=at, id__lte=pk))


def rejected_frames_purge(
    *, dry_run: bool = False, now: datetime | None = None
) -> RejectedPurgeResult:
    """Delete (or with dry_run, count) rejected frames past REPLAY_REJECTED_RETENTION_DAYS,
    then the oldest beyond REPLAY_REJECTED_MAX_BYTES; audit what was deleted."""
    days = conf.get("REPLAY_REJECTED_RETENTION_DAYS")
    max_bytes = conf.get("REPLAY_REJECTED_MAX_BYTES") or None
    cutoff = (now or timezone.now()) - timedelta(days=days) if days else None
    result = RejectedPurgeResult(dry_run=dry_run, cutoff=cutoff, max_bytes=max_bytes)
    with transaction.atomic():
        result.held = RejectedFrame.objects.filter(conversation_uuid__in=_held_uuids()).count()
        frames = rejected_frames_purgeable()
        if cutoff is not None:
            expired = frames.filter(received_at__lt=cutoff)
            result.expired, result.expired_bytes = _count_bytes(expired)
            if not dry_run:
                expired.delete()
            frames = frames.filter(received_at__gte=cutoff)
        if max_bytes is not None:
            over = _over_budget(frames, max_bytes)
            result.over_budget, result.over_budget_bytes = _count_bytes(over)
            if not dry_run:
                over.delete()
        if result.deleted and not dry_run:
            detail = f"rejected frames: {rejected_purge_summary(result)}"
            audit_record(user=None, action=AuditLog.Action.PURGE, detail=detail)
    return result


def _count_bytes(frames: QuerySet[RejectedFrame]) -> tuple[int, int]:
    totals = frames.aggregate(count=Count("id"), size=Sum("stored_bytes"))
    return totals["count"], totals["size"] or 0


def rejected_purge_summary(result: RejectedPurgeResult) -> str:
    """What a rejected frame purge deleted (or would), by rule, in one line."""
    parts = []
    if result.cutoff is not None:
        parts.append(
            f"{result.expired} received before {result.cutoff:%Y-%m-%d %H:%M} UTC "
            f"({result.expired_bytes} bytes; REPLAY_REJECTED_RETENTION_DAYS)"
        )
    if result.max_bytes is not None:
        parts.append(
            f"{result.over_budget} oldest beyond the newest {result.max_bytes} bytes "
            f"({result.over_budget_bytes} bytes; REPLAY_REJECTED_MAX_BYTES)"
        )
    return "; ".join(parts) + f"; kept {result.held} of conversations under legal hold"
