"""Admin for conversations, ingest keys, rejected frames and the audit log."""

import json

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from conversations import conf, exports, ingest, permissions
from conversations.audit import audit_request
from conversations.export_views import download
from conversations.ingest.worker import journal_lag
from conversations.keys import ingest_key_revoke
from conversations.models import (
    AuditLog,
    Conversation,
    IngestKey,
    JournalEntry,
    Message,
    MessageEdit,
    Participant,
    RejectedFrame,
    TimelineEvent,
)
from conversations.retention import LegalHoldError, conversation_remove


def pretty_json(value: object) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


@admin.register(IngestKey)
class IngestKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["hint", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "hint", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: IngestKey, form, change: bool) -> None:
        if not change:
            raw_key = IngestKey.new_raw_key()
            obj.set_key(raw_key)
            super().save_model(request, obj, form, change)
            messages.warning(
                request,
                f"The key for {obj.name} is {raw_key} — copy it now, it is not shown again.",
            )
            return
        super().save_model(request, obj, form, change)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return permissions.has(request.user, permissions.REVOKE_KEY)

    @admin.action(description="Revoke the selected keys", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[IngestKey]) -> None:
        for key in queryset:
            ingest_key_revoke(key=key)
            audit_request(
                request, AuditLog.Action.REVOKE_KEY, detail=f"ingest key {key.name!r} ({key.hint}…)"
            )
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    fields = ["name", "arn", "email", "status", "joined_dts", "left_dts"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["message_dts", "author_name", "body", "edit_count", "edits_shown"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).prefetch_related("edits")

    @admin.display(description="Edits")
    def edits_shown(self, message: Message) -> str:
        return format_html_join(
            "", "<div>{}: {}</div>", ((e.received_at, e.body) for e in message.edits.all())
        )


class TimelineEventInline(admin.TabularInline):
    model = TimelineEvent
    extra = 0
    fields = ["at", "event_type", "actor_name", "summary"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "uuid",
        "first_seen_at",
        "medium",
        "closed",
        "message_total",
        "rrweb_batch_total",
        "legal_hold",
        "tags",
    ]
    list_filter = ["closed", "medium", "legal_hold"]
    search_fields = ["uuid", "arn", "tags", "participants__name", "participants__email"]
    editable = ["legal_hold", "tags"]
    inlines = [ParticipantInline, MessageInline, TimelineEventInline]
    actions = ["export_archives", "export_summary_csv"]

    def _editable(self, request: HttpRequest) -> list[str]:
        if permissions.has(request.user, permissions.HOLD):
            return self.editable
        return [name for name in self.editable if name != "legal_hold"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        editable = self._editable(request)
        names = [f.name for f in Conversation._meta.fields if f.name not in editable]
        return [
            *[n for n in names if n not in ("summary", "sentiment")],
            "summary_shown",
        ]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [*self._editable(request), *self.get_readonly_fields(request, obj)]

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        # Exports are POSTs: the page's object tools (outside the change form) hold one small
        # form each, for exporters only.
        exports_allowed = permissions.can_export(request.user)
        conversation = self.get_object(request, object_id) if exports_allowed else None
        export_urls = [
            (fmt, reverse("conversations:export", args=[conversation.uuid, fmt]))
            for fmt in (exports.FORMATS if conversation is not None else ())
        ]
        extra_context = {**(extra_context or {}), "export_urls": export_urls}
        return super().change_view(request, object_id, form_url, extra_context)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return permissions.has(request.user, permissions.DELETE)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return permissions.can_export(request.user)

    def save_model(self, request: HttpRequest, obj: Conversation, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if "legal_hold" in form.changed_data:
            audit_request(
                request, AuditLog.Action.LEGAL_HOLD, obj, "set" if obj.legal_hold else "lifted"
            )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_deleted_objects(self, objs, request: HttpRequest) -> tuple:
        """Name the conversations, not every row they own; those under legal hold are refused."""
        conversations = list(objs)
        protected = [f"{c} (under legal hold)" for c in conversations if c.legal_hold]
        perms_needed = set() if self.has_delete_permission(request) else {"conversation"}
        counts = {self.opts.verbose_name_plural: len(conversations)}
        return [str(c) for c in conversations], counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        self.delete_queryset(request, Conversation.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset.only("id", "uuid"):
            try:
                conversation_remove(
                    conversation=conversation, user=request.user, request=request, detail="admin"
                )
            except LegalHoldError as exc:  # a hold set since the confirmation page
                self.message_user(request, f"Not deleted: {exc}.", messages.ERROR)

    @admin.display(description="Summary as sent")
    def summary_shown(self, conversation: Conversation) -> str:
        return pretty_json(conversation.summary)

    @admin.action(
        description="Export the selected conversations as a zip of archives",
        permissions=["export"],
    )
    def export_archives(
        self, request: HttpRequest, queryset: QuerySet[Conversation]
    ) -> HttpResponse:
        def exported(conversation: Conversation) -> None:
            audit_request(request, AuditLog.Action.EXPORT, conversation, "admin: zip of archives")

        rows = queryset.order_by("id").only("id", "uuid").iterator(chunk_size=100)
        return download(
            exports.archives_zip_chunks(rows, on_each=exported),
            content_type="application/zip",
            filename="conversations.zip",
        )

    @admin.action(
        description="Download a summary CSV of the selected conversations",
        permissions=["export"],
    )
    def export_summary_csv(
        self, request: HttpRequest, queryset: QuerySet[Conversation]
    ) -> HttpResponse:
        audit_request(
            request,
            AuditLog.Action.EXPORT,
            detail=f"admin: summary CSV of {queryset.count()} conversation(s)",
        )
        return download(
            exports.summary_csv_chunks(queryset),
            content_type="text/csv; charset=utf-8",
            filename="conversations-summary.csv",
        )


class MessageEditInline(admin.TabularInline):
    model = MessageEdit
    extra = 0
    fields = ["received_at", "body", "payload"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Stored data as it arrived: viewable, never edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["conversation", "message_dts", "author_name", "body", "edit_count"]
    search_fields = ["conversation__uuid", "body", "author_name"]
    exclude = ["original"]
    readonly_fields = ["original_shown"]
    inlines = [MessageEditInline]

    @admin.display(description="Message as sent")
    def original_shown(self, message: Message) -> str:
        return pretty_json(message.original)


@admin.register(TimelineEvent)
class TimelineEventAdmin(ReadOnlyAdmin):
    list_display = ["conversation", "at", "event_type", "summary"]
    list_filter = ["event_type", "known"]
    exclude = ["envelope"]
    readonly_fields = ["envelope_shown"]

    @admin.display(description="Frame as sent")
    def envelope_shown(self, event: TimelineEvent) -> str:
        return pretty_json(event.envelope)


@admin.register(RejectedFrame)
class RejectedFrameAdmin(admin.ModelAdmin):
    list_display = ["received_at", "kind", "source_name", "conversation_uuid", "reason", "size"]
    list_filter = ["kind", "source_name"]
    search_fields = ["reason", "conversation_uuid"]
    exclude = ["text", "binary"]
    readonly_fields = [
        *(f.name for f in RejectedFrame._meta.fields if f.name not in ("text", "binary")),
        "frame",
    ]
    actions = ["reapply"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Raw frame")
    def frame(self, rejected: RejectedFrame) -> str:
        if rejected.binary is not None:
            return format_html("<pre>{}</pre>", bytes(rejected.binary)[:4096].hex(" "))
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", rejected.text)

    def has_reapply_permission(self, request: HttpRequest) -> bool:
        return permissions.has(request.user, permissions.REAPPLY)

    @admin.action(
        description="Re-apply the selected frames through ingest", permissions=["reapply"]
    )
    def reapply(self, request: HttpRequest, queryset: QuerySet[RejectedFrame]) -> None:
        passed, failed = frames_reapply(queryset)
        audit_request(
            request,
            AuditLog.Action.REAPPLY,
            detail=f"stored {len(passed)}, still rejected {len(failed)}: "
            + ", ".join([*passed, *(label for label, _ in failed)])[:2000],
        )
        if passed:
            self.message_user(request, f"Now stored, removed from rejected: {', '.join(passed)}.")
        for label, reason in failed:
            self.message_user(request, f"Still rejected {label}: {reason}", messages.WARNING)


def frames_reapply(queryset: QuerySet[RejectedFrame]) -> tuple[list[str], list[tuple[str, str]]]:
    """Apply rejected frames again; those that pass leave the list, the rest keep a new reason."""
    passed: list[str] = []
    failed: list[tuple[str, str]] = []
    for rejected in queryset.select_related("source").order_by("received_at", "id"):
        label = f"#{rejected.pk}"
        if rejected.binary is not None or rejected.truncated:
            failed.append((label, "only a whole text frame can be applied again"))
            continue
        with transaction.atomic():
            item = ingest.item_from_text(rejected.text, received_at=rejected.received_at)
            outcome = ingest.items_apply([item], source=rejected.source)[0]
            # A frame that fails again was kept by ingest as a new rejected frame with the
            # new reason; either way this row is replaced.
            rejected.delete()
        if outcome.status == ingest.REJECTED:
            failed.append((label, outcome.reason))
        else:
            passed.append(label)
    return passed, failed


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    """Frames received but not yet applied by a worker: the ingest lag, at a glance."""

    list_display = ["id", "received_at", "conversation_key", "size", "reject_kind"]
    readonly_fields = [f.name for f in JournalEntry._meta.fields if f.name != "data"]
    exclude = ["data"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        waiting, oldest = journal_lag()
        if oldest is None:
            self.message_user(request, "The journal is empty: every frame is applied.")
        else:
            age = (timezone.now() - oldest).total_seconds()
            self.message_user(
                request,
                f"{waiting} journal entries wait for a worker; the oldest was received "
                f"{age:.1f} s ago.",
                messages.WARNING if age > conf.get("REPLAY_HEALTH_MAX_LAG") else messages.INFO,
            )
        return super().changelist_view(request, extra_context)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["at", "username", "action", "conversation_uuid", "ip", "detail"]
    list_filter = ["action"]
    search_fields = ["username", "conversation_uuid", "detail", "ip"]
    readonly_fields = [f.name for f in AuditLog._meta.fields]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
