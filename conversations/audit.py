"""The audit trail: who viewed, exported, imported or purged which conversation."""

from django.http import HttpRequest

from conversations.models import AuditLog, Conversation


def _client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR is what the server saw; a proxy in front must set it (not X-Forwarded-For,
    # which any client can forge).
    address = request.META.get("REMOTE_ADDR") or None
    return address


def audit_record(
    *,
    user,
    action: str,
    conversation: Conversation | str | None = None,
    request: HttpRequest | None = None,
    detail: str = "",
) -> AuditLog:
    """Record that `user` (None for the system) did `action` to `conversation`."""
    if action not in AuditLog.Action.values:
        raise ValueError(f"unknown audit action {action!r}; one of {AuditLog.Action.values}")
    if user is not None and not user.is_authenticated:
        user = None
    uuid = conversation.uuid if isinstance(conversation, Conversation) else (conversation or "")
    return AuditLog.objects.create(
        user=user,
        username=user.get_username() if user is not None else "",
        action=action,
        conversation_uuid=uuid[:100],
        detail=detail,
        ip=_client_ip(request) if request is not None else None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:1000] if request is not None else "",
    )
