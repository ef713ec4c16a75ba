"""Exports of conversations: the versioned archive, the standalone replay, transcripts, CSVs.

Every export is a generator of bytes, so one conversation or thousands stream through
constant memory. The archive's schema is documented in docs/archive-format.md.
"""

import base64
import csv
import hashlib
import io
import json
import re
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard
from django.conf import settings
from django.db.models import Model, Prefetch, QuerySet
from django.template.loader import render_to_string

from conversations import assets, clock, selectors, storage
from conversations.models import (
    Conversation,
    ConversationNote,
    Message,
    MessageEdit,
    Participant,
    TimelineEvent,
)

ARCHIVE_FORMAT = "conversation-replay-archive"
ARCHIVE_VERSION = 2
# Version 1 is version 2 without `notes`: still read.
ARCHIVE_VERSIONS_READ = (1, 2)

# The columns each archive object carries, in the model's own names.
CONVERSATION_FIELDS = (
    "uuid",
    "arn",
    "merchant_id",
    "medium",
    "start_dts",
    "closed",
    "closed_dts",
    "visible",
    "unread_messages",
    "last_message_dts",
    "last_interactive_message_dts",
    "customer_first_message_unresponded_to_dts",
    "last_message_body",
    "last_participant_arn",
    "last_participant_name",
    "summary_message_count",
    "sentiment",
    "summary",
    "summary_rank",
    "message_total",
    "event_total",
    "rrweb_batch_total",
    "rrweb_event_total",
    "recording_start_ms",
    "recording_end_ms",
    "first_seen_at",
    "updated_at",
    "legal_hold",
    "tags",
)
PARTICIPANT_FIELDS = (
    "key",
    "arn",
    "participant_uuid",
    "name",
    "email",
    "sms_phone_number",
    "profile_image_url",
    "language_iso_code",
    "timezone",
    "status",
    "joined_dts",
    "left_dts",
    "last_message_dts",
    "unread_messages",
    "raw",
    "updated_at",
)
MESSAGE_FIELDS = (
    "message_uuid",
    "client_message_id",
    "author_arn",
    "author_name",
    "body",
    "message_type",
    "type",
    "language_iso_code",
    "message_dts",
    "message_epoch",
    "media_urls",
    "translations",
    "transport_statuses",
    "original",
    "original_sha256",
    "edit_count",
    "received_at",
)
EDIT_FIELDS = ("body", "payload", "payload_sha256", "received_at")
EVENT_FIELDS = (
    "event_type",
    "known",
    "at",
    "event_dts",
    "actor_arn",
    "actor_name",
    "summary",
    "envelope",
    "envelope_sha256",
)
# A note's author is a name: accounts are per installation.
NOTE_FIELDS = ("offset_ms", "text", "author_name", "created_at")
FORMATS: dict[str, tuple[str, str]] = {
    # fmt: (file suffix, content type)
    "archive": (".json", "application/json"),
    "archive-zst": (".json.zst", "application/zstd"),
    "html": (".html", "text/html; charset=utf-8"),
    "txt": (".txt", "text/plain; charset=utf-8"),
    "csv": (".csv", "text/csv; charset=utf-8"),
    "print": ("", "text/html; charset=utf-8"),
}


# Values ------------------------------------------------------------------------------------


def dts(value: datetime | None) -> str | None:
    """A datetime as fixed-width UTC ISO 8601, so equal instants always give equal text."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def json_bytes(value: Any, *, sort_keys: bool = True) -> bytes:
    """Compact JSON as UTF-8; text that is not valid Unicode survives as escapes."""
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys
        ).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys).encode("ascii")


def canonical_events(events_json: bytes) -> bytes:
    """A batch's events in one canonical spelling: stored text may carry the sender's spacing."""
    return json_bytes(json.loads(events_json), sort_keys=False)


def row(instance: Model | storage.BatchMeta, fields: Iterable[str]) -> dict[str, Any]:
    values = {}
    for name in fields:
        value = getattr(instance, name)
        values[name] = dts(value) if isinstance(value, datetime) else value
    return values


def message_time(message: Message) -> datetime | None:
    """When a message was sent: its own time, else its epoch, else when it was received."""
    if message.message_dts is not None:
        return message.message_dts
    if message.message_epoch is not None:
        return datetime.fromtimestamp(message.message_epoch / 1000, tz=UTC)
    return message.received_at


def author(message: Message) -> str:
    return message.author_name or message.author_arn or "unknown"


# The archive -------------------------------------------------------------------------------


def conversation_full(conversation: Conversation | str) -> Conversation:
    """The conversation with everything an export reads, in a fixed number of queries."""
    uuid = conversation if isinstance(conversation, str) else conversation.uuid
    return Conversation.objects.prefetch_related(
        Prefetch("participants", queryset=Participant.objects.order_by("joined_dts", "id")),
        Prefetch(
            "messages",
            queryset=Message.objects.order_by(
                "message_epoch", "message_dts", "id"
            ).prefetch_related(
                Prefetch("edits", queryset=MessageEdit.objects.order_by("received_at", "id"))
            ),
        ),
        Prefetch("events", queryset=TimelineEvent.objects.order_by("at", "id")),
        Prefetch(
            "notes", queryset=ConversationNote.objects.order_by("offset_ms", "created_at", "id")
        ),
    ).get(uuid=uuid)


def archive_head(conversation: Conversation) -> dict[str, Any]:
    """Everything in the archive except the recording's batches."""
    messages = []
    for message in conversation.messages.all():
        data = row(message, MESSAGE_FIELDS)
        data["edits"] = [row(edit, EDIT_FIELDS) for edit in message.edits.all()]
        messages.append(data)
    batches = list(selectors.recording_batches(conversation))
    return {
        "format": ARCHIVE_FORMAT,
        "version": ARCHIVE_VERSION,
        "conversation": row(conversation, CONVERSATION_FIELDS),
        "participants": [row(p, PARTICIPANT_FIELDS) for p in conversation.participants.all()],
        "messages": messages,
        "events": [row(event, EVENT_FIELDS) for event in conversation.events.all()],
        "notes": [row(note, NOTE_FIELDS) for note in conversation.notes.all()],
        "segments": selectors.segments(batches),
    }


def archive_chunks(conversation: Conversation | str) -> Iterator[bytes]:
    """One conversation as the archive's JSON, batch by batch."""
    conversation = conversation_full(conversation)
    head = json_bytes(archive_head(conversation))
    yield head[:-1] + b',"batches":['
    batches = selectors.recording_batch_list(conversation.pk)
    for number, (batch, events_json) in enumerate(storage.events_json_each(batches)):
        events = canonical_events(events_json)
        meta = row(batch, storage.BATCH_FIELDS)
        meta["sha256"] = storage.batch_sha256(batch, events_json)
        meta["events_sha256"] = hashlib.sha256(events).hexdigest()
        yield (b"," if number else b"") + json_bytes(meta)[:-1] + b',"events":' + events + b"}"
    yield b"]}"
    storage.events_cache_clear()


def archive_zst_chunks(conversation: Conversation | str) -> Iterator[bytes]:
    """The archive, zstd-compressed as it streams."""
    compressor = zstandard.ZstdCompressor(level=10).compressobj()
    for chunk in archive_chunks(conversation):
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def archive_bytes(conversation: Conversation | str) -> bytes:
    return b"".join(archive_chunks(conversation))


def archive_name(conversation: Conversation, suffix: str = ".json") -> str:
    """A file name for the conversation, safe on any file system."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", conversation.uuid)[:80]
    if safe != conversation.uuid:
        safe = f"{safe}-{conversation.pk}"
    return f"conversation-{safe}{suffix}"


class _Sink:
    """A write-only file that hands back what was written since the last drain."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def archives_zip_chunks(
    conversations: Iterable[Conversation],
    *,
    on_each: Callable[[Conversation], None] | None = None,
) -> Iterator[bytes]:
    """A zip of one archive per conversation, written and handed out one piece at a time."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[arg-type]
        for conversation in conversations:
            with archive.open(archive_name(conversation), "w", force_zip64=True) as entry:
                for chunk in archive_chunks(conversation):
                    entry.write(chunk)
                    if len(chunk) > 64 * 1024:
                        yield sink.drain()
            if on_each is not None:
                on_each(conversation)
            yield sink.drain()
    yield sink.drain()


# Transcripts -------------------------------------------------------------------------------


def _earlier_versions(message: Message) -> list[dict[str, str | None]]:
    return [{"received": dts(edit.received_at), "body": edit.body} for edit in message.edits.all()]


def first_body(message: Message) -> str | None:
    """The body the message was first sent with; None while only its edits have been seen."""
    if isinstance(message.original, dict) and isinstance(message.original.get("body"), str):
        return message.original["body"]
    return None


def is_edited(message: Message) -> bool:
    original = first_body(message)
    return bool(message.edit_count or message.edits.all() or original not in (None, message.body))


def transcript_txt_chunks(conversation: Conversation | str) -> Iterator[bytes]:
    """The conversation as plain text: a header, one paragraph a message, then staff notes."""
    conversation = conversation_full(conversation)
    names = ", ".join(str(p) for p in conversation.participants.all()) or "none"
    lines = [
        f"Conversation {conversation.uuid}",
        f"Started: {dts(conversation.start_dts or conversation.first_seen_at)}",
        f"Closed: {dts(conversation.closed_dts) or 'no'}",
        f"Participants: {names}",
        "",
    ]
    yield ("\n".join(lines) + "\n").encode("utf-8")
    for message in conversation.messages.all():
        text = f"[{dts(message_time(message))}] {author(message)}: {message.body}\n"
        original = first_body(message)
        if original is not None and original != message.body:
            text += f"    (edited; first sent as: {original})\n"
        for edit in message.edits.all():
            text += f"    (edit received {dts(edit.received_at)}: {edit.body})\n"
        yield text.encode("utf-8")
    notes = _note_entries(conversation)
    if notes:
        text = "\nNotes (time into the recording):\n"
        text += "".join(f"[{note['at']}] {note['author']}: {note['body']}\n" for note in notes)
        yield text.encode("utf-8")


def _csv_cell(value: str) -> str:
    # A cell starting with these is run as a formula by spreadsheet programs.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_rows(rows: Iterable[list[Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for values in rows:
        writer.writerow([_csv_cell(v) if isinstance(v, str) else v for v in values])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()


# Columns are only ever added at the end: people read these files with scripts.
TRANSCRIPT_CSV_HEADER = [
    "time",
    "author",
    "body",
    "edited",
    "original_body",
    "edits",
    "kind",
    "offset_ms",
]


def transcript_csv_chunks(conversation: Conversation | str) -> Iterator[bytes]:
    """One row a message: time, author, current body, whether it was edited, the body it was
    first sent with, and its edits as a JSON array; `kind` "message".

    Staff notes are rows of `kind` "note" among them in time order, with their `offset_ms`
    into the recording; one past the recording's end has no time and comes last.
    """
    conversation = conversation_full(conversation)

    def note_row(note: dict[str, Any]) -> list[Any]:
        # "[]" where a message has its edits, so a script parsing that column still can.
        return [note["time"], note["author"], note["body"], "no", "", "[]", "note", note["offset"]]

    def rows() -> Iterator[list[Any]]:
        yield TRANSCRIPT_CSV_HEADER
        notes = deque(_note_entries(conversation))
        for message in conversation.messages.all():
            moment = message_time(message)
            while notes and notes[0]["moment"] and moment and notes[0]["moment"] < moment:
                yield note_row(notes.popleft())
            edits = json.dumps(_earlier_versions(message), ensure_ascii=False)
            yield [
                dts(moment),
                author(message),
                message.body,
                "yes" if is_edited(message) else "no",
                first_body(message) or "",
                edits,
                "message",
                "",
            ]
        for note in notes:
            yield note_row(note)

    yield from _csv_rows(rows())


def _transcript_entries(conversation: Conversation) -> list[dict[str, Any]]:
    """The messages, each with its offset into the recording where the replay page puts it:
    its server time moved to the customer's (recording's) clock."""
    start = conversation.recording_start_ms
    end = conversation.recording_end_ms
    clock_offset = selectors.clock_offset(conversation)
    entries = []
    for message in conversation.messages.all():
        moment = message_time(message)
        offset = None
        at = clock.to_recording_ms(selectors.message_server_ms(message), clock_offset)
        if start is not None and end is not None and at is not None:
            candidate = at - start
            offset = candidate if 0 <= candidate <= end - start else None
        entries.append(
            {
                "time": dts(moment),
                "author": author(message),
                "body": message.body,
                "edits": _earlier_versions(message),
                "offset": offset,
            }
        )
    return entries


def _at(offset: int | None) -> str:
    """An offset into the recording as the staff pages write it: 0:42, 1:02:05."""
    from conversations.views import format_ms

    return format_ms(offset)


def _page_error_entries(conversation: Conversation) -> list[dict[str, Any]]:
    """The console errors and failed requests, each at its offset into the recording."""
    start = conversation.recording_start_ms
    entries = []
    for error in selectors.page_error_list(conversation):
        offset = error["ts"] - start if start is not None and error["ts"] >= start else None
        entries.append({**error, "offset": offset, "at": _at(offset)})
    return entries


def _note_entries(conversation: Conversation) -> list[dict[str, Any]]:
    """The staff notes in recording order: each at its offset into the recording and, within
    the recording, at that moment on the server's clock, the one message times are on.

    `seek` is the offset a player can go to; None past the recording's end (a note may be
    written anywhere through the API) or without a recording.
    """
    start = conversation.recording_start_ms
    end = conversation.recording_end_ms
    clock_offset = selectors.clock_offset(conversation)
    entries = []
    for note in conversation.notes.all():
        moment = None
        if start is not None and end is not None and note.offset_ms <= end - start:
            server_ms = start + note.offset_ms + clock_offset
            moment = datetime.fromtimestamp(server_ms / 1000, tz=UTC)
        entries.append(
            {
                "offset": note.offset_ms,
                "seek": note.offset_ms if moment is not None else None,
                "at": _at(note.offset_ms),
                "moment": moment,
                "time": dts(moment),
                "author": note.author_name or "someone",
                "body": note.text,
            }
        )
    return entries


def print_page(conversation: Conversation | str) -> str:
    """A print-friendly HTML page of the transcript."""
    conversation = conversation_full(conversation)
    return render_to_string(
        "exports/print.html",
        {
            "conversation": conversation,
            "started": dts(conversation.start_dts or conversation.first_seen_at),
            "closed": dts(conversation.closed_dts),
            "participants": list(conversation.participants.all()),
            "entries": _transcript_entries(conversation),
            "notes": _note_entries(conversation),
            "page_errors": _page_error_entries(conversation),
        },
    )


# The standalone replay ---------------------------------------------------------------------

# What must never appear inside an inline <script> or <style>: it would end it early.
_BREAKOUT = {
    "script": re.compile(r"</script|<!--|<script", re.IGNORECASE),
    "style": re.compile(r"</style", re.IGNORECASE),
}
_MARKER = "@@REPLAY-EVENTS@@"


def embed_json(data: bytes) -> bytes:
    """JSON made safe inside <script type="application/json">: no tag, comment or line break.

    The characters replaced can only occur inside JSON strings, where the escapes mean the same.
    """
    return (
        data.replace(b"&", b"\\u0026")
        .replace(b"<", b"\\u003c")
        .replace(b">", b"\\u003e")
        .replace("\u2028".encode(), b"\\u2028")
        .replace("\u2029".encode(), b"\\u2029")
    )


def _bundle(name: str, *, tag: str) -> str:
    path = Path(settings.BASE_DIR) / "static" / "dist" / name
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"static/dist/{name} is missing: build the front-end bundle (npm run build)"
        ) from None
    text = re.sub(r"\n?/[/*]# sourceMappingURL=.*$", "", text.rstrip())
    if _BREAKOUT[tag].search(text):
        raise ValueError(f"static/dist/{name} contains a sequence that would end its <{tag}>")
    return text


# Distinct assets a standalone replay embeds at most; any more show as the placeholder.
MAX_EMBEDDED_ASSETS = 200


def _events_with_embedded_assets(conversation: Conversation) -> Iterator[bytes]:
    """The recording's events as one JSON array, what they load embedded as data: URIs."""
    found: dict[str, str] = {}

    def to(url: str) -> str:
        if url not in found:
            if len(found) >= MAX_EMBEDDED_ASSETS:
                return assets.embedded("")
            found[url] = assets.embedded(url)
        return found[url]

    yield b"["
    first = True
    batches = selectors.recording_batch_list(conversation.pk)
    for _, events_json in storage.events_json_each(batches):
        events = json.loads(events_json)
        if not events:
            continue
        assets.rewrite_events(events, to)
        yield (b"" if first else b",") + json_bytes(events, sort_keys=False)[1:-1]
        first = False
    yield b"]"


def standalone_html_chunks(conversation: Conversation | str) -> Iterator[bytes]:
    """One HTML file that replays the recording with the transcript, offline and inert."""
    conversation = conversation_full(conversation)
    script = _bundle("standalone.js", tag="script")
    script_hash = hashlib.sha256(script.encode("utf-8")).digest()
    page = render_to_string(
        "exports/standalone.html",
        {
            "conversation": conversation,
            "started": dts(conversation.start_dts or conversation.first_seen_at),
            "closed": dts(conversation.closed_dts),
            "participants": list(conversation.participants.all()),
            "entries": _transcript_entries(conversation),
            "notes": _note_entries(conversation),
            "page_errors": _page_error_entries(conversation),
            "script": script,
            "script_hash": base64.b64encode(script_hash).decode(),
            "style": _bundle("standalone.css", tag="style"),
            "marker": _MARKER,
        },
    )
    head, tail = page.split(_MARKER)
    yield head.encode("utf-8")
    yield b'{"conversation_uuid":' + embed_json(json_bytes(conversation.uuid)) + b',"events":'
    for chunk in _events_with_embedded_assets(conversation):
        yield embed_json(chunk)
    yield b"}"
    yield tail.encode("utf-8")
    storage.events_cache_clear()


# Many conversations ------------------------------------------------------------------------

SUMMARY_CSV_HEADER = [
    "conversation_uuid",
    "start",
    "end",
    "participants",
    "message_count",
    "first_response_seconds",
    "recording_seconds",
    "tags",
]


def first_response_seconds(messages: list[Message]) -> float | None:
    """Seconds from the first message to the first message by someone else, if any."""
    if not messages:
        return None
    first = messages[0]
    first_time = message_time(first)
    for message in messages[1:]:
        if author(message) != author(first):
            reply_time = message_time(message)
            if first_time is None or reply_time is None:
                return None
            return round((reply_time - first_time).total_seconds(), 3)
    return None


def summary_csv_chunks(conversations: QuerySet[Conversation]) -> Iterator[bytes]:
    """One row a conversation: when, who, how many messages, response time, recording, tags."""
    queryset = conversations.order_by("id").prefetch_related(
        Prefetch("participants", queryset=Participant.objects.order_by("joined_dts", "id")),
        Prefetch(
            "messages",
            queryset=Message.objects.order_by("message_epoch", "message_dts", "id").only(
                "id",
                "conversation_id",
                "author_arn",
                "author_name",
                "message_dts",
                "message_epoch",
                "received_at",
            ),
        ),
    )

    def rows() -> Iterator[list[Any]]:
        yield SUMMARY_CSV_HEADER
        for conversation in queryset.iterator(chunk_size=200):
            messages = list(conversation.messages.all())
            recording = None
            if conversation.recording_start_ms is not None:
                length = conversation.recording_end_ms - conversation.recording_start_ms
                recording = round(length / 1000, 3)
            yield [
                conversation.uuid,
                dts(conversation.start_dts or conversation.first_seen_at),
                dts(conversation.closed_dts or conversation.last_message_dts),
                "; ".join(str(p) for p in conversation.participants.all()),
                len(messages),
                first_response_seconds(messages),
                recording,
                ", ".join(conversation.tag_list),
            ]

    yield from _csv_rows(rows())


def export_chunks(conversation: Conversation | str, fmt: str) -> Iterator[bytes]:
    """The conversation in format `fmt` (a key of FORMATS)."""
    if fmt == "archive":
        return archive_chunks(conversation)
    if fmt == "archive-zst":
        return archive_zst_chunks(conversation)
    if fmt == "html":
        return standalone_html_chunks(conversation)
    if fmt == "txt":
        return transcript_txt_chunks(conversation)
    if fmt == "csv":
        return transcript_csv_chunks(conversation)
    if fmt == "print":
        return iter([print_page(conversation).encode("utf-8")])
    raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
