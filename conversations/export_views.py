"""Download a conversation in any export format: exporters only, by POST, audited."""

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_POST

from conversations import exports, permissions
from conversations.audit import audit_request
from conversations.models import AuditLog, Conversation


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Under ASGI a plain iterator is read whole into memory before sending; pulling one
    # chunk at a time keeps a large export streaming.
    sentinel = b""
    pull = sync_to_async(lambda: next(chunks, sentinel), thread_sensitive=True)
    while True:
        chunk = await pull()
        if chunk is sentinel:
            return
        if chunk:
            yield chunk


def download(chunks: Iterator[bytes], *, content_type: str, filename: str) -> StreamingHttpResponse:
    """A streaming response that saves as `filename` (shown inline when filename is empty)."""
    response = StreamingHttpResponse(_async_chunks(chunks), content_type=content_type)
    if filename:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


# POST, with its CSRF token: an export is written to the audit log, so a link on another
# site, or a prefetch, must not be able to make one.
@require_POST
@permissions.page_permission_required(permissions.EXPORT)
def conversation_export(request: HttpRequest, uuid: str, fmt: str) -> HttpResponse:
    if fmt not in exports.FORMATS:
        raise Http404(f"no export format {fmt!r}")
    conversation = Conversation.objects.filter(uuid=uuid).only("id", "uuid").first()
    if conversation is None:
        raise Http404(f"no conversation {uuid}")
    suffix, content_type = exports.FORMATS[fmt]
    audit_request(request, AuditLog.Action.EXPORT, conversation, f"format {fmt}")
    filename = exports.archive_name(conversation, suffix) if suffix else ""
    response = download(
        exports.export_chunks(conversation, fmt), content_type=content_type, filename=filename
    )
    if fmt == "print":
        # The print page is shown in the browser: nothing in it may run or load.
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
