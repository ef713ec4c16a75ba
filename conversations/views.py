"""Staff pages: the conversation list, the replay page and the recording endpoints it loads."""

import json
from datetime import date
from urllib.parse import urlencode, urljoin

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import compress_string
from django.views.decorators.http import require_GET

from conversations import assets, permissions, selectors
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


def _recording_ms(conversation) -> int | None:
    if conversation.recording_start_ms is None or conversation.recording_end_ms is None:
        return None
    return conversation.recording_end_ms - conversation.recording_start_ms


@require_GET
@staff_required
def conversation_list(request: HttpRequest) -> HttpResponse:
    filters = filters_from_query(request.GET)
    page = selectors.conversation_page(
        queryset=selectors.conversation_filter(filters),
        cursor=request.GET.get("cursor", ""),
        limit=PAGE_SIZE,
    )
    kept = {k: v for k, v in request.GET.items() if k != "cursor" and v}
    rows = [
        {
            "conversation": conversation,
            "participants": list(conversation.participants.all()),
            "duration": format_ms(_duration_ms(conversation)),
            "recording": format_ms(_recording_ms(conversation)),
        }
        for conversation in page.items
    ]
    return render(
        request,
        "conversations/list.html",
        {
            "rows": rows,
            "filters": filters,
            "query": request.GET,
            "media": selectors.conversation_media(),
            "filtered": bool(kept),
            "next_url": f"?{urlencode({**kept, 'cursor': page.next_cursor})}"
            if page.next_cursor
            else None,
            "first_url": f"?{urlencode(kept)}" if request.GET.get("cursor") else None,
        },
    )


def _export_links(request: HttpRequest, uuid: str) -> list[tuple[str, str]]:
    """Where each export is posted to, for those allowed to export."""
    if not permissions.can_export(request.user):
        return []
    return [
        (label, reverse("conversations:export", kwargs={"uuid": uuid, "fmt": fmt}))
        for fmt, label in EXPORT_FORMATS
    ]


@require_GET
@staff_required
def conversation_replay(request: HttpRequest, uuid: str) -> HttpResponse:
    data = selectors.replay_data(uuid=uuid)
    if data is None:
        raise Http404("No such conversation.")
    conversation, offset_ms, items = data.conversation, data.offset_ms, data.items
    audit_request(request, AuditLog.Action.VIEW, conversation, "replay page")
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
    }
    return render(
        request,
        "conversations/replay.html",
        {
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
        },
    )


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
