"""Staff pages: the conversation list, the replay page and the recording endpoints it loads."""

import json
import logging
from datetime import date
from urllib.parse import urlencode, urljoin, urlsplit

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.text import compress_string
from django.views.decorators.http import require_GET, require_POST

from conversations import assets, permissions, selectors, staff
from conversations.audit import audit_request
from conversations.live import live_path
from conversations.models import AuditLog
from conversations.permissions import api_permission_required, staff_required

EXPORT_FORMATS = [
    ("archive", "Archive (.zip)"),
    ("archive-zst", "Archive (.zst)"),
    ("html", "HTML"),
    ("txt", "Text"),
    ("csv", "CSV"),
    ("print", "Print"),
]
logger = logging.getLogger(__name__)
PAGE_SIZE = 50
# One chunk of recording events: big enough to cover minutes, small enough to parse in a blink.
CHUNK_EVENTS = 3000


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _choice(value: str, yes: str, no: str) -> bool | None:
    return {yes: True, no: False}.get(value)


def filters_from_query(query: dict) -> selectors.ConversationFilters:
    """The list's filters from its URL; unknown or malformed values are ignored."""
    return selectors.ConversationFilters(
        q=query.get("q", "").strip()[:200],
        start_from=_date(query.get("from", "")),
        start_to=_date(query.get("to", "")),
        closed=_choice(query.get("status", ""), "closed", "open"),
        has_recording=_choice(query.get("recording", ""), "yes", "no"),
        medium=query.get("medium", "").strip()[:20],
        participant=query.get("participant", "").strip()[:100],
        tag=" ".join(query.get("tag", "").split()).lower()[:40],
        has_messages=_choice(query.get("messages", ""), "1", "0"),
        unwatched=query.get("unwatched", "") == "1",
        had_errors=query.get("errors", "") == "1",
    )


def _duration_ms(conversation) -> int | None:
    start = conversation.start_dts or conversation.first_seen_at
    end = conversation.closed_dts or conversation.last_message_dts
    if not (start and end) or end < start:
        return None
    return int((end - start).total_seconds() * 1000)


def format_ms(ms: int | None) -> str:
    """A duration as 0:42, 12:05 or 1:02:05."""
    if ms is None:
        return ""
    seconds = max(0, ms // 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def page_label(href: str) -> str:
    """A recorded page's address as a list shows it: host and path, without the scheme."""
    parts = urlsplit(href)
    if not parts.netloc:
        return href
    return parts.netloc + (parts.path if parts.path != "/" else "") + ("?…" if parts.query else "")


def _recording_ms(conversation) -> int | None:
    if conversation.recording_start_ms is None or conversation.recording_end_ms is None:
        return None
    return conversation.recording_end_ms - conversation.recording_start_ms


@require_GET
@staff_required
def conversation_list(request: HttpRequest) -> HttpResponse:
    return conversation_list_page(request, request.GET)


def conversation_list_page(
    request: HttpRequest, params: QueryDict, *, save_error: str = "", status: int = 200
) -> HttpResponse:
    """The list for `params` (the page's URL, or what a refused save posted)."""
    filters = filters_from_query(params)
    page = selectors.conversation_page(
        queryset=selectors.conversation_filter(filters, user=request.user),
        cursor=params.get("cursor", ""),
        limit=PAGE_SIZE,
    )
    kept = {k: v for k, v in params.items() if k != "cursor" and v}
    current_query = staff.filter_query(params)
    rows = [
        {
            "conversation": conversation,
            "participants": list(conversation.participants.all()),
            "duration": format_ms(_duration_ms(conversation)),
            "recording": format_ms(_recording_ms(conversation)),
            "page": page_label(conversation.first_href),
        }
        for conversation in page.items
    ]
    return render(
        request,
        "conversations/list.html",
        {
            "rows": rows,
            "filters": filters,
            "query": params,
            "media": selectors.conversation_media(),
            "filtered": bool(kept),
            "next_url": f"?{urlencode({**kept, 'cursor': page.next_cursor})}"
            if page.next_cursor
            else None,
            "first_url": f"?{urlencode(kept)}" if params.get("cursor") else None,
            "saved_filters": staff.saved_filter_list(user=request.user),
            "current_query": current_query,
            "save_error": save_error,
        },
        status=status,
    )


def _list_url(query: str) -> str:
    return f"{reverse('conversations:list')}?{query}" if query else reverse("conversations:list")


@require_POST
@staff_required
def saved_filter_save(request: HttpRequest) -> HttpResponse:
    """Save the list's current filters (posted as `query`) under `name`, then show them."""
    query = staff.filter_query(QueryDict(request.POST.get("query", "")))
    try:
        staff.saved_filter_create(user=request.user, name=request.POST.get("name", ""), query=query)
    except staff.SavedFilterError as error:
        return conversation_list_page(request, QueryDict(query), save_error=str(error), status=400)
    return redirect(_list_url(query))


@require_POST
@staff_required
def saved_filter_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete one of the user's saved filters, then show the list as it was."""
    if not staff.saved_filter_delete(user=request.user, pk=pk):
        raise Http404("No such saved filter.")
    return redirect(_list_url(staff.filter_query(QueryDict(request.POST.get("query", "")))))


def _export_links(request: HttpRequest, uuid: str) -> list[tuple[str, str]]:
    """Where each export is posted to, for those allowed to export."""
    if not permissions.can_export(request.user):
        return []
    return [
        (label, reverse("conversations:export", kwargs={"uuid": uuid, "fmt": fmt}))
        for fmt, label in EXPORT_FORMATS
    ]


def _annotation_config(request: HttpRequest, conversation) -> dict:
    """What the replay page's notes and tags need: the notes, where to write, who may."""
    uuid = conversation.uuid
    return {
        "notes": selectors.note_list(conversation, user=request.user),
        "tags": conversation.tag_list,
        "canAnnotate": permissions.can_annotate(request.user),
        "notesUrl": reverse("conversations:note-create", kwargs={"uuid": uuid}),
        "tagsUrl": reverse("conversations:tags", kwargs={"uuid": uuid}),
        "listUrl": reverse("conversations:list"),
        "csrfToken": get_token(request),
    }


def _replay_context(request: HttpRequest, uuid: str) -> dict | None:
    """Everything the replay page shows; None if the conversation is gone. Records the view."""
    data = selectors.replay_data(uuid=uuid)
    if data is None:
        return None
    conversation, offset_ms, items = data.conversation, data.offset_ms, data.items
    audit_request(request, AuditLog.Action.VIEW, conversation, "replay page")
    staff.conversation_view_record(user=request.user, conversation=conversation)
    # The page starts playing with what it holds: no request before the first frame.
    batches = selectors.recording_batches(conversation)
    first = None
    if batches:
        start, end, size = selectors.first_chunk_bounds(batches, live=not conversation.closed)
        first = {
            "from": start,
            "to": end,
            **selectors.recording_chunk(
                conversation, first=start, last=end, max_events=size, batches=batches
            ),
        }
    config = {
        "uuid": conversation.uuid,
        "indexUrl": reverse("conversations:recording-index", kwargs={"uuid": uuid}),
        "eventsUrl": reverse("conversations:recording-events", kwargs={"uuid": uuid}),
        "livePath": live_path(conversation.uuid),
        "live": not conversation.closed,
        "closed": conversation.closed,
        "clockOffsetMs": offset_ms,
        **_annotation_config(request, conversation),
    }
    return {
        "conversation": conversation,
        "participants": list(conversation.participants.all()),
        "items": items,
        "config": config,
        "recording_start": {
            "index": selectors.recording_index(conversation, batches),
            "first": first,
        },
        "exports": _export_links(request, conversation.uuid),
        "duration": format_ms(_duration_ms(conversation)),
        "recording": format_ms(_recording_ms(conversation)),
        "page_errors": selectors.page_error_list(conversation),
    }


REPLAY_TEMPLATE = "conversations/replay.html"
HEAD_END = "</head>"
STREAM_FAILED = (
    '<body><main class="page"><p class="error">This conversation could not be shown: the server'
    " met an error while building the page. Reload to try again.</p></main></body></html>"
)


def _streamed_page(request: HttpRequest, head_context: dict, build) -> StreamingHttpResponse:
    """The page's <head> at once, the rest once `build()` has read it from the database.

    The head names the style sheets and the (deferred) script, so the browser fetches them
    while the server still reads the recording. Both renders use the same template; the head
    may use only what `head_context` holds, so the two heads are the same.
    """
    head = render_to_string(REPLAY_TEMPLATE, head_context, request).partition(HEAD_END)
    head = head[0] + head[1]

    def rest() -> str:
        context = build()
        if context is None:  # deleted since the head went out
            return '<body><main class="page"><p>No such conversation.</p></main></body></html>'
        return render_to_string(REPLAY_TEMPLATE, context, request).partition(HEAD_END)[2]

    async def chunks():
        yield head
        try:
            body = await sync_to_async(rest)()
        except Exception:  # the status has gone out; say so in the page, and log it
            logger.exception("Replay page for %s failed after its head was sent", request.path)
            body = STREAM_FAILED
        yield body

    response = StreamingHttpResponse(chunks(), content_type="text/html; charset=utf-8")
    response["X-Accel-Buffering"] = "no"  # a proxy passes the head on at once
    return response


@require_GET
@staff_required
def conversation_replay(request: HttpRequest, uuid: str) -> HttpResponse:
    if isinstance(request, ASGIRequest):  # served by the ASGI server: stream
        # The head's title names the participants; a 404 must be known before anything is sent.
        conversation = (
            selectors.Conversation.objects.filter(uuid=uuid)
            .prefetch_related("participants")
            .first()
        )
        if conversation is None:
            raise Http404("No such conversation.")
        get_token(request)  # a new CSRF cookie must go out with the headers, before the body
        head_context = {
            "conversation": conversation,
            "participants": list(conversation.participants.all()),
        }
        return _streamed_page(request, head_context, lambda: _replay_context(request, uuid))
    context = _replay_context(request, uuid)
    if context is None:
        raise Http404("No such conversation.")
    return render(request, REPLAY_TEMPLATE, context)


def _json(request: HttpRequest, body: bytes, status: int = 200) -> HttpResponse:
    """JSON, gzip-compressed when the client accepts it (recordings shrink about tenfold)."""
    response = HttpResponse(content_type="application/json", status=status)
    response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = "private, no-cache"
    if "gzip" in request.headers.get("Accept-Encoding", "") and len(body) > 200:
        body = compress_string(body)
        response["Content-Encoding"] = "gzip"
    response.content = body
    return response


def _conversation_or_404(uuid: str):
    conversation = selectors.Conversation.objects.filter(uuid=uuid).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


@require_GET
@api_permission_required(permissions.VIEW)
def recording_index(request: HttpRequest, uuid: str) -> HttpResponse:
    """The recording's batches, full-snapshot positions, pages and clock offset."""
    index = selectors.recording_index(_conversation_or_404(uuid))
    return _json(request, json.dumps(index, separators=(",", ":")).encode())


@require_GET
@api_permission_required(permissions.VIEW)
def recording_events(request: HttpRequest, uuid: str) -> HttpResponse:
    """One chunk of events: batches from `from` (an event_index) up to `to` or a size bound."""
    conversation = _conversation_or_404(uuid)
    try:
        first = int(request.GET.get("from", "0"))
        last = int(request.GET.get("to", str(2**62)))
    except ValueError:
        return _json(request, b'{"error":"from and to must be integers"}', status=400)
    try:
        max_events = max(100, min(int(request.GET.get("max", CHUNK_EVENTS)), 20 * CHUNK_EVENTS))
    except ValueError:
        max_events = CHUNK_EVENTS
    chunk = selectors.recording_chunk(conversation, first=first, last=last, max_events=max_events)
    return _json(request, json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode())


@require_GET
@staff_required
def asset(request: HttpRequest, token: str) -> HttpResponse:
    """An asset a recording referenced, fetched by the server; a transparent pixel if not."""
    url = assets.asset_url_from_token(token)
    if url is None:
        raise Http404("No such asset.")
    content = assets.asset_get(url)
    if content is None:
        response = HttpResponse(assets.PLACEHOLDER, content_type=assets.PLACEHOLDER_TYPE)
        response["Cache-Control"] = "private, max-age=300"
    else:
        data = bytes(content.data)
        if content.content_type == "text/css":
            # A style sheet's own images and fonts go through us too, found from its URL.
            css = data.decode("utf-8", "replace")
            data = assets.rewrite_css(css, lambda ref: assets.proxied(urljoin(url, ref))).encode()
        response = HttpResponse(data, content_type=content.content_type)
        response["Cache-Control"] = "private, max-age=86400"
        response["ETag"] = f'"{content.sha256}"'
    # Fetched from anywhere: never run as a document of ours (an SVG can hold scripts).
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
