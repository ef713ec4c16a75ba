"""The replay page's writes: notes pinned to a moment, and tags. JSON in and out, audited."""

import json

from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods, require_POST

from conversations import annotations, permissions, selectors
from conversations.audit import audit_request
from conversations.live import live_annotations_notify
from conversations.models import AuditLog, Conversation, ConversationNote
from conversations.permissions import api_permission_required


def _conversation(uuid: str) -> Conversation:
    conversation = Conversation.objects.filter(uuid=uuid).only("id", "uuid", "tags").first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise annotations.AnnotationError("the request body must be a JSON object") from None
    if not isinstance(data, dict):
        raise annotations.AnnotationError("the request body must be a JSON object")
    return data


def _refused(error: annotations.AnnotationError) -> JsonResponse:
    return JsonResponse({"error": str(error)}, status=400)


@require_POST
@api_permission_required(permissions.ANNOTATE)
def note_create(request: HttpRequest, uuid: str) -> JsonResponse:
    """Pin a note at `offset_ms` from the start of the recording."""
    conversation = _conversation(uuid)
    try:
        data = _body(request)
        note = annotations.note_create(
            conversation=conversation,
            author=request.user,
            offset_ms=data.get("offset_ms"),
            text=data.get("text"),
        )
    except annotations.AnnotationError as error:
        return _refused(error)
    audit_request(
        request, AuditLog.Action.NOTE_ADD, conversation, f"at {note.offset_ms} ms: {note.text}"
    )
    live_annotations_notify(conversation.uuid, note_id=note.pk)
    return JsonResponse(selectors.note_dict(note, user=request.user), status=201)


@require_http_methods(["DELETE"])
@api_permission_required(permissions.VIEW)
def note_delete(request: HttpRequest, uuid: str, note_id: int) -> JsonResponse:
    """Delete a note: its author or an administrator (permissions.can_delete_note)."""
    conversation = _conversation(uuid)
    note = get_object_or_404(ConversationNote, pk=note_id, conversation=conversation)
    if not permissions.can_delete_note(request.user, note):
        return JsonResponse(
            {"error": "only its author or an administrator deletes a note"}, status=403
        )
    detail = f"{note.author_name}'s note at {note.offset_ms} ms: {note.text}"
    annotations.note_delete(note=note)
    audit_request(request, AuditLog.Action.NOTE_DELETE, conversation, detail)
    live_annotations_notify(conversation.uuid, deleted_note_id=note_id)
    return JsonResponse({"deleted": note_id})


@require_POST
@api_permission_required(permissions.ANNOTATE)
def conversation_tags(request: HttpRequest, uuid: str) -> JsonResponse:
    """Add a tag (`{"add": "refund"}`) or remove one (`{"remove": "refund"}`)."""
    conversation = _conversation(uuid)
    services = {
        "add": annotations.conversation_tag_add,
        "remove": annotations.conversation_tag_remove,
    }
    try:
        data = _body(request)
        change = next((key for key in services if key in data), None)
        if change is None:
            raise annotations.AnnotationError('say "add" or "remove" and the tag')
        tags = services[change](conversation=conversation, tag=data[change])
    except annotations.AnnotationError as error:
        return _refused(error)
    detail = f"{change} {annotations.tag_clean(data[change])!r}"
    audit_request(request, AuditLog.Action.TAGS, conversation, detail)
    live_annotations_notify(conversation.uuid, tags=tags)
    return JsonResponse({"tags": tags})
