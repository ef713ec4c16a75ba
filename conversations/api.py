"""The staff read API: JSON over session authentication."""

import json
from collections.abc import Iterator
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from conversations import permissions, selectors
from conversations.audit import audit_request
from conversations.models import AuditLog
from conversations.permissions import api_permission_required
from conversations.views import filters_from_query


@require_GET
@api_permission_required(permissions.VIEW)
def api_conversation_list(request: HttpRequest) -> JsonResponse:
    try:
        limit = max(1, min(int(request.GET.get("limit", 50)), 200))
    except ValueError:
        return JsonResponse({"error": "limit must be an integer"}, status=400)
    # The list page's filters, by the same names (`q`, `status`, `messages`, `unwatched`, …).
    filtered = selectors.conversation_filter(filters_from_query(request.GET), user=request.user)
    page = selectors.conversation_page(
        queryset=filtered.prefetch_related(None),  # rows carry no participants
        cursor=request.GET.get("cursor", ""),
        limit=limit,
    )
    next_url = None
    if page.next_cursor:
        kept = {k: v for k, v in request.GET.items() if k not in ("cursor", "limit") and v}
        query = urlencode({**kept, "cursor": page.next_cursor, "limit": limit})
        next_url = request.build_absolute_uri(f"{request.path}?{query}")
    return JsonResponse(
        {
            "results": [selectors.conversation_row_dict(c) for c in page.items],
            "next": next_url,
        }
    )


# A whole conversation through the API is an export: exporters only, and audited.
@require_GET
@api_permission_required(permissions.EXPORT)
def api_conversation_detail(request: HttpRequest, uuid: str) -> HttpResponse:
    conversation = selectors.conversation_get(uuid=uuid)
    if conversation is None:
        return JsonResponse({"error": f"no conversation {uuid}"}, status=404)
    audit_request(request, AuditLog.Action.EXPORT, conversation, "API: conversation")
    return JsonResponse(selectors.conversation_detail_dict(conversation))


@require_GET
@api_permission_required(permissions.EXPORT)
def api_conversation_recording(request: HttpRequest, uuid: str) -> HttpResponse:
    conversation = selectors.conversation_get(uuid=uuid)
    if conversation is None:
        return JsonResponse({"error": f"no conversation {uuid}"}, status=404)
    audit_request(request, AuditLog.Action.EXPORT, conversation, "API: recording")
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
