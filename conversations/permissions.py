"""Who may do what: the one place staff pages, the API, the live socket and the admin ask.

Staff are given a role, a group made by migration 0006 (see ROLES): a *viewer* lists and
replays conversations; an *exporter* also downloads them, reads a whole conversation from
the API and annotates them (notes pinned to a moment, tags); an *administrator* also manages
ingest keys, rejected frames, legal hold and deletion, and deletes anyone's notes.
Every check also requires an active staff account, so unticking "staff status" locks someone
out at once whatever groups they are in.
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse

VIEW = "conversations.view_conversation"
EXPORT = "conversations.export_conversation"
HOLD = "conversations.hold_conversation"
DELETE = "conversations.delete_conversation"
REVOKE_KEY = "conversations.revoke_ingestkey"
REAPPLY = "conversations.reapply_rejectedframe"
ANNOTATE = "conversations.annotate_conversation"
DELETE_ANY_NOTE = "conversations.delete_conversationnote"

_VIEWER = (VIEW,)
_EXPORTER = (*_VIEWER, EXPORT, ANNOTATE)
ROLES: dict[str, tuple[str, ...]] = {
    "viewer": _VIEWER,
    "exporter": _EXPORTER,
    "administrator": (
        *_EXPORTER,
        "conversations.change_conversation",
        HOLD,
        DELETE,
        "conversations.view_message",
        "conversations.view_timelineevent",
        "conversations.view_ingestkey",
        "conversations.add_ingestkey",
        "conversations.change_ingestkey",
        REVOKE_KEY,
        "conversations.view_rejectedframe",
        REAPPLY,
        "conversations.view_auditlog",
        DELETE_ANY_NOTE,
        # Lifting a sign-in lockout early: django-axes' failed attempts.
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    ),
}


def has(user, permission: str) -> bool:
    """Whether `user` is active staff holding `permission`."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(permission)
    )


def can_view(user) -> bool:
    return has(user, VIEW)


def can_export(user) -> bool:
    return has(user, EXPORT)


def can_annotate(user) -> bool:
    """Whether `user` may add notes and add or remove tags."""
    return has(user, ANNOTATE)


def can_delete_note(user, note) -> bool:
    """A note goes by its author's hand (while they may annotate) or an administrator's."""
    if has(user, DELETE_ANY_NOTE):
        return True
    return can_annotate(user) and note.author_id is not None and note.author_id == user.pk


def page_permission_required(permission: str = VIEW) -> Callable:
    """For pages: sign-in for anonymous visitors, 403 for staff without `permission`."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            if not has(request.user, permission):
                raise PermissionDenied(f"this needs the {permission} permission")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


staff_required = page_permission_required(VIEW)


def api_permission_required(permission: str) -> Callable:
    """For JSON endpoints: answers 401 or 403 in JSON instead of redirecting."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                response = JsonResponse({"error": "authentication required"}, status=401)
                response["WWW-Authenticate"] = 'Session realm="staff"'
                return response
            if not has(request.user, permission):
                return JsonResponse({"error": f"permission {permission} required"}, status=403)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def roles_ensure(*, group_model=None, permission_model=None) -> None:
    """Give each role's group exactly the permissions ROLES lists (creating what is missing)."""
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    for name, permissions in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = []
        for permission in permissions:
            app_label, codename = permission.split(".")
            wanted.append(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)
