"""Admin for conversations, ingest keys and rejected frames."""

from django.contrib import admin, messages
from django.http import HttpRequest

from conversations.keys import ingest_key_revoke
from conversations.models import (
    Conversation,
    IngestKey,
    Message,
    Participant,
    RejectedFrame,
    TimelineEvent,
)


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

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset) -> None:
        for key in queryset:
            ingest_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    fields = ["name", "arn", "email", "status", "joined_dts", "left_dts"]
    readonly_fields = fields
    can_delete = False


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["message_dts", "author_name", "body", "edit_count"]
    readonly_fields = fields
    can_delete = False


class TimelineEventInline(admin.TabularInline):
    model = TimelineEvent
    extra = 0
    fields = ["at", "event_type", "summary"]
    readonly_fields = fields
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "uuid",
        "first_seen_at",
        "medium",
        "closed",
        "message_total",
        "rrweb_batch_total",
    ]
    list_filter = ["closed", "medium"]
    search_fields = ["uuid", "arn", "participants__name", "participants__email"]
    readonly_fields = [f.name for f in Conversation._meta.fields]
    inlines = [ParticipantInline, MessageInline, TimelineEventInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(RejectedFrame)
class RejectedFrameAdmin(admin.ModelAdmin):
    list_display = ["received_at", "kind", "source_name", "conversation_uuid", "reason", "size"]
    list_filter = ["kind", "source_name"]
    search_fields = ["reason", "conversation_uuid"]
    readonly_fields = [f.name for f in RejectedFrame._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
