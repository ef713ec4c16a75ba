"""The staff read API: JSON over session authentication."""

import json
from collections.abc import Callable, Iterator
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from conversations import selectors

VIEW_PERMISSION = "conversations.view_conversation"


def api_permission_required(permission: str) -> Callable:
    """Like permission_required, but answers 401/403 JSON instead of redirecting."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                response = JsonResponse({"error": "authentication required"}, status=401)
                response["WWW-Authenticate"] = 'Session realm="staff"'
                return response
            if not (request.user.is_staff and request.user.has_perm(permission)):
                return JsonResponse({"error": f"permission {permission} required"}, status=403)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


@require_GET
@api_permission_required(VIEW_PERMISSION)
def api_conversation_list(request: HttpRequest) -> JsonResponse:
    try:
        limit = max(1, min(int(request.GET.get("limit", 50)), 200))
    except ValueError:
        return JsonResponse({"error": "limit must be an integer"}, status=400)
    page = selectors.conversation_page(cursor=request.GET.get("cursor", ""), limit=limit)
    next_url = None
    if page.next_cursor:
        next_url = request.build_absolute_uri(
            f"{request.path}?cursor={page.next_cursor}&limit={limit}"
        )
    return JsonResponse(
        {
            "results": [selectors.conversation_summary_dict(c) for c in page.items],
            "next": next_url,
        }
    )


@require_GET
@api_permission_required(VIEW_PERMISSION)
def api_conversation_detail(request: HttpRequest, uuid: str) -> HttpResponse:
    conversation = selectors.conversation_get(uuid=uuid)
    if conversation is None:
        return JsonResponse({"error": f"no conversation {uuid}"}, status=404)
    return JsonResponse(selectors.conversation_detail_dict(conversation))


@require_GET
@api_permission_required(VIEW_PERMISSION)
def api_conversation_recording(request: HttpRequest, uuid: str) -> HttpResponse:
    conversation = selectors.conversation_get(uuid=uuid)
    if conversation is None:
        return JsonResponse({"error": f"no conversation {uuid}"}, status=404)
    batches = list(selectors.recording_batches(conversation))

    def body() -> Iterator[bytes]:
        head = {
            "conversation_uuid": conversation.uuid,
            "segments": selectors.segments(batches),
            "batches": [selectors.batch_meta_dict(batch) for batch in batches],
        }
        yield json.dumps(head)[:-1].encode() + b', "events": '
        yield from selectors.recording_events_chunks(conversation)
        yield b"}"

    return StreamingHttpResponse(body(), content_type="application/json")
