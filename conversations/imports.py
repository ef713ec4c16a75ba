"""Put archives back: one archive, or a zip of them, each into its own transaction.

An archive whose conversation is already stored is skipped, so importing twice is harmless.
An archive that is broken is refused with the reason, and nothing of it is stored. Archives
are read as streams, a batch at a time, so memory does not grow with their size.
"""

import codecs
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import zstandard
from django.db import DatabaseError, IntegrityError, models, transaction
from django.utils import timezone

from conversations import exports, ingest, storage
from conversations.models import (
    Conversation,
    ConversationNote,
    Message,
    MessageEdit,
    Participant,
    RRWebBatch,
    TimelineEvent,
)

CREATED = "created"
SKIPPED = "skipped"
REFUSED = "refused"

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# An archive inflates to at most this: bounds the work a zstd or zip bomb can cause.
MAX_ARCHIVE_BYTES = 2 * 1024 * 1024 * 1024
# No one value of an archive (a batch, the list of messages) may be larger than this, in
# characters: memory is bounded by it, not by the archive's size.
MAX_VALUE_CHARS = 128 * 1024 * 1024
# What an archive may not decide unless the operator says it is trusted (--trust-archive): a
# hold would keep it from retention for ever, and these two dates are what retention measures.
UNTRUSTED_FIELDS = ("legal_hold", "first_seen_at", "updated_at")


class ArchiveError(ValueError):
    """An archive that cannot be imported; the message says where and why."""


@dataclass(frozen=True)
class ImportResult:
    status: str
    name: str
    conversation_uuid: str = ""
    reason: str = ""

    def __str__(self) -> str:
        what = self.conversation_uuid or "?"
        tail = f": {self.reason}" if self.reason else ""
        return f"{self.status} {what} ({self.name}){tail}"


class JsonStream:
    """A JSON object read from a byte stream one member at a time, an array one item at a time.

    Each value is parsed whole by the json module, at C speed, from a buffer holding little
    more than that value: memory follows the largest value, not the size of the archive.
    """

    CHUNK = 1024 * 1024
    _SPACE = " \t\n\r"
    _NUMBER = "0123456789+-.eE"

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.text = ""
        self.pos = 0
        self.read_bytes = 0
        self.eof = False
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.decoder = json.JSONDecoder()

    def _more(self, size: int) -> bool:
        """Read about `size` more bytes; False at the end of the stream."""
        if self.eof:
            return False
        try:
            data = self.stream.read(size)
        except zstandard.ZstdError as exc:
            raise ArchiveError(f"not a valid zstd file: {exc}") from None
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise ArchiveError(f"broken zip member: {exc}") from None
        self.read_bytes += len(data)
        if self.read_bytes > MAX_ARCHIVE_BYTES:
            raise ArchiveError(f"inflates to more than {MAX_ARCHIVE_BYTES} bytes")
        try:
            text = self.utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            at = self.read_bytes - len(data) + exc.start
            raise ArchiveError(f"not UTF-8 text at byte {at}") from None
        self.eof = not data
        self.text = self.text[self.pos :] + text
        self.pos = 0
        return bool(data)

    def peek(self) -> str:
        """The next character that is not white space ("" at the end)."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in self._SPACE:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self._more(self.CHUNK):
                return ""

    def _expect(self, chars: str, where: str) -> str:
        found = self.peek()
        if not found or found not in chars:
            wanted = " or ".join(repr(c) for c in chars)
            raise ArchiveError(f"not valid JSON: expected {wanted} {where}")
        self.pos += 1
        return found

    def value(self) -> Any:
        """The next value, whole."""
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                # Most likely cut off at the end of what was read: read as much again.
                pending = len(self.text) - self.pos
                if pending > MAX_VALUE_CHARS:
                    raise ArchiveError(
                        f"a value is longer than {MAX_VALUE_CHARS} characters"
                    ) from None
                if not self._more(max(self.CHUNK, pending)):
                    raise ArchiveError(f"not valid JSON: {exc.msg}") from None
                continue
            except RecursionError:
                raise ArchiveError("not valid JSON: nested too deeply") from None
            if (
                isinstance(value, int | float)
                and not self.eof
                and not self.text[end:].strip(self._NUMBER)
            ):
                # A number may go on beyond what was read ("12" of "125", "1.5" of "1.5e3").
                self._more(self.CHUNK)
                continue
            self.pos = end
            return value

    def members(self) -> Iterator[str]:
        """The keys of the object; the caller reads each one's value (value() or items())."""
        if self.peek() != "{":
            raise ArchiveError(
                f'not a conversation archive (no "format": "{exports.ARCHIVE_FORMAT}")'
            )
        self.pos += 1
        if self.peek() == "}":
            self.pos += 1
        else:
            while True:
                key = self.value()
                if not isinstance(key, str):
                    raise ArchiveError("not valid JSON: an object key must be a string")
                self._expect(":", f"after {key!r}")
                yield key
                if self._expect(",}", f"after the value of {key!r}") == "}":
                    break
        if self.peek():
            raise ArchiveError("not valid JSON: more text after the archive")

    def items(self, where: str) -> Iterator[Any]:
        """The items of the array that comes next."""
        if self.peek() != "[":
            raise ArchiveError(f"{where} must be a list")
        self.pos += 1
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self._expect(",]", f"after an item of {where}") == "]":
                return


def _check_head(head: dict[str, Any]) -> None:
    if head.get("format") != exports.ARCHIVE_FORMAT:
        raise ArchiveError(f'not a conversation archive (no "format": "{exports.ARCHIVE_FORMAT}")')
    version = head.get("version")
    if version not in exports.ARCHIVE_VERSIONS_READ or isinstance(version, bool):
        readable = ", ".join(str(v) for v in exports.ARCHIVE_VERSIONS_READ)
        raise ArchiveError(
            f"archive version {version!r} is not supported (this server reads versions {readable})"
        )


def _fields(model: type[models.Model], data: Any, names: tuple[str, ...], where: str) -> dict:
    """Model field values from an archive object, with every field required and checked."""
    if not isinstance(data, dict):
        raise ArchiveError(f"{where} must be an object")
    values = {}
    for name in names:
        if name not in data:
            raise ArchiveError(f"{where} has no {name!r}")
        value = data[name]
        field = model._meta.get_field(name)
        if isinstance(field, models.DateTimeField) and value is not None:
            try:
                value = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise ArchiveError(f"{where}.{name} is not an ISO 8601 date-time") from None
        values[name] = value
    return values


def _list(data: dict, key: str, where: str) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise ArchiveError(f"{where}.{key} must be a list")
    return value


def _restore_head(head: dict[str, Any], *, trust: bool) -> Conversation:
    """Store the conversation and all it owns but its recording; the caller holds a transaction."""
    values = _fields(
        Conversation, head.get("conversation"), exports.CONVERSATION_FIELDS, "conversation"
    )
    if not trust:
        now = timezone.now()
        values.update(legal_hold=False, first_seen_at=now, updated_at=now)
    conversation = Conversation.objects.create(**values)
    Participant.objects.bulk_create(
        Participant(
            conversation=conversation,
            **_fields(Participant, p, exports.PARTICIPANT_FIELDS, f"participants[{i}]"),
        )
        for i, p in enumerate(_list(head, "participants", "archive"))
    )
    for i, data in enumerate(_list(head, "messages", "archive")):
        where = f"messages[{i}]"
        message = Message.objects.create(
            conversation=conversation, **_fields(Message, data, exports.MESSAGE_FIELDS, where)
        )
        MessageEdit.objects.bulk_create(
            MessageEdit(
                message=message,
                **_fields(MessageEdit, edit, exports.EDIT_FIELDS, f"{where}.edits[{j}]"),
            )
            for j, edit in enumerate(_list(data, "edits", where))
        )
    TimelineEvent.objects.bulk_create(
        TimelineEvent(
            conversation=conversation,
            **_fields(TimelineEvent, e, exports.EVENT_FIELDS, f"events[{i}]"),
        )
        for i, e in enumerate(_list(head, "events", "archive"))
    )
    # Version 1 had no notes; from version 2 the list is required, possibly empty.
    notes = _list(head, "notes", "archive") if head["version"] >= 2 else []
    ConversationNote.objects.bulk_create(
        ConversationNote(
            conversation=conversation,
            **_fields(ConversationNote, note, exports.NOTE_FIELDS, f"notes[{i}]"),
        )
        for i, note in enumerate(notes)
    )
    return conversation


def _restore_batch(ctx: ingest.Context, conversation: Conversation, data: Any, where: str) -> None:
    meta = _fields(RRWebBatch, data, storage.BATCH_FIELDS, where)
    if not isinstance(data.get("events"), list):
        raise ArchiveError(f"{where}.events must be a list of rrweb events")
    events = exports.json_bytes(data["events"], sort_keys=False)
    if hashlib.sha256(events).hexdigest() != data.get("events_sha256"):
        raise ArchiveError(f"{where}.events do not match events_sha256: the archive is damaged")
    # The ingest service compresses the batch exactly as it does for a live frame.
    try:
        ingest.batch_store(
            ctx,
            conversation,
            event_index=meta["event_index"],
            kind=meta["kind"],
            text=events.decode("utf-8"),
            digest=meta["sha256"],
            received_at=meta["received_at"],
        )
    except ingest.Rejection as rejection:
        raise ArchiveError(f"{where}: {rejection.reason}") from None
    RRWebBatch.objects.filter(conversation=conversation, event_index=meta["event_index"]).update(
        segment=meta["segment"], raw_size=meta["raw_size"]
    )


def _restore_derived(ctx: ingest.Context, conversation: Conversation) -> None:
    """What ingest derives from the batches and the archive does not carry, in one UPDATE.

    Storing the batches noted it in `ctx`, as for live frames, but `ctx` is not written
    here (the archive's own counters are restored as they were): the console errors and
    failed requests (archives made before them must still import), the clock offset, and
    the first page (of the lowest-numbered batch with one).
    """
    derived = ctx.deltas.get(conversation.pk, {})
    first_href_index, first_href = derived.get("page", (None, ""))
    Conversation.objects.filter(pk=conversation.pk).update(
        console_error_total=derived.get("console_error_total", 0),
        network_error_total=derived.get("network_error_total", 0),
        clock_offset_ms=derived.get("offset"),
        first_href_index=first_href_index,
        first_href=first_href,
    )


def _opened(stream: BinaryIO) -> BinaryIO:
    """The archive's JSON bytes, inflated as they are read if the stream is zstd."""
    magic = stream.read(4)
    stream.seek(0)
    if magic == ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
    return stream


def archive_import_stream(
    stream: BinaryIO, *, name: str = "archive", trust: bool = False
) -> ImportResult:
    """Import one archive (JSON or zstd-compressed JSON) as it is read from `stream`.

    Everything before `batches` (always last) is read first, then batches one at a time.
    Unless `trust`, the archive's legal hold and its first-seen and last-activity times are
    not taken: the conversation is new here, without a hold.
    """
    reader = JsonStream(_opened(stream))
    keys = reader.members()
    head: dict[str, Any] = {}
    try:
        for key in keys:
            if key == "batches":
                break
            head[key] = reader.value()
        else:
            _check_head(head)
            raise ArchiveError("archive.batches must be a list")
        _check_head(head)
    except ArchiveError as exc:
        return ImportResult(REFUSED, name, reason=str(exc))
    conversation_head = head.get("conversation")
    uuid = conversation_head.get("uuid") if isinstance(conversation_head, dict) else None
    if not isinstance(uuid, str) or not uuid:
        return ImportResult(REFUSED, name, reason="conversation.uuid must be a non-empty string")
    if Conversation.objects.filter(uuid=uuid).exists():
        return ImportResult(SKIPPED, name, uuid, "already stored")
    try:
        with transaction.atomic():
            conversation = _restore_head(head, trust=trust)
            ctx = ingest.Context(source=None)
            for i, data in enumerate(reader.items("archive.batches")):
                _restore_batch(ctx, conversation, data, f"batches[{i}]")
            _restore_derived(ctx, conversation)
            for _ in keys:  # what follows the batches: read to check it, not stored
                reader.value()
    except ArchiveError as exc:
        return ImportResult(REFUSED, name, uuid, str(exc))
    except IntegrityError as exc:
        return ImportResult(
            REFUSED, name, uuid, f"breaks a rule of the schema (uniqueness, a range): {exc}"
        )
    except (TypeError, ValueError, DatabaseError) as exc:
        return ImportResult(REFUSED, name, uuid, f"a value has the wrong type: {exc}")
    return ImportResult(CREATED, name, uuid)


def archive_import(data: bytes, *, name: str = "archive", trust: bool = False) -> ImportResult:
    """Import one archive held in memory."""
    return archive_import_stream(io.BytesIO(data), name=name, trust=trust)


def path_import(path: Path, *, trust: bool = False) -> Iterator[ImportResult]:
    """Import an archive file, or every archive in a zip of them, reading each as a stream."""
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        yield ImportResult(REFUSED, str(path), reason=f"cannot be read: {exc}")
        return
    if not is_zip:
        try:
            with path.open("rb") as stream:
                yield archive_import_stream(stream, name=path.name, trust=trust)
        except OSError as exc:
            yield ImportResult(REFUSED, str(path), reason=f"cannot be read: {exc}")
        return
    try:
        with zipfile.ZipFile(path) as bundle:
            for info in bundle.infolist():
                if info.is_dir():
                    continue
                name = f"{path.name}:{info.filename}"
                if not info.filename.endswith((".json", ".json.zst")):
                    yield ImportResult(REFUSED, name, reason="not a .json or .json.zst archive")
                    continue
                with bundle.open(info) as stream:
                    yield archive_import_stream(stream, name=name, trust=trust)
    except (zipfile.BadZipFile, OSError) as exc:
        yield ImportResult(REFUSED, str(path), reason=f"broken zip file: {exc}")
