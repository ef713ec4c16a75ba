"""The audit trail: who viewed, exported, imported or purged which conversation."""

from django.http import HttpRequest

from conversations.models import AuditLog, Conversation


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the audit log and sign-in throttling see it."""
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
        ip=client_ip(request) if request is not None else None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:1000] if request is not None else "",
    )


def audit_request(
    request: HttpRequest,
    action: str,
    conversation: Conversation | str | None = None,
    detail: str = "",
) -> AuditLog:
    """Record that the user making `request` did `action`."""
    return audit_record(
        user=request.user, action=action, conversation=conversation, request=request, detail=detail
    )


def _attempted(credentials: dict | None) -> str:
    username = (credentials or {}).get("username") or ""
    return f"username {str(username)[:150]!r}"


def login_failed_record(sender, credentials=None, request=None, **kwargs) -> None:
    """Receiver of Django's user_login_failed: a failed sign-in, with the name tried."""
    audit_record(
        user=None,
        action=AuditLog.Action.LOGIN_FAILED,
        request=request,
        detail=_attempted(credentials),
    )


def lockout_record(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    """Receiver of django-axes' user_locked_out: a username and address locked out."""
    audit_record(
        user=None,
        action=AuditLog.Action.LOCKOUT,
        request=request,
        detail=f"{_attempted({'username': username})} from {ip_address}",
    )
