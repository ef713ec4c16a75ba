"""Put archives back: one archive, or a zip of them, each into its own transaction.

An archive whose conversation is already stored is skipped, so importing twice is harmless.
An archive that is broken is refused with the reason, and nothing of it is stored.
"""

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import zstandard
from django.db import DatabaseError, IntegrityError, models, transaction

from conversations import exports, ingest
from conversations.models import (
    Conversation,
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
# An archive inflates to at most this: bounds memory against a zstd bomb.
MAX_ARCHIVE_BYTES = 2 * 1024 * 1024 * 1024


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


def _decode(data: bytes) -> dict[str, Any]:
    if data[:4] == ZSTD_MAGIC:
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(data)
            data = reader.read(MAX_ARCHIVE_BYTES + 1)
        except zstandard.ZstdError as exc:
            raise ArchiveError(f"not a valid zstd file: {exc}") from None
        if len(data) > MAX_ARCHIVE_BYTES:
            raise ArchiveError(f"inflates to more than {MAX_ARCHIVE_BYTES} bytes")
    try:
        value = json.loads(data)
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"not UTF-8 text at byte {exc.start}") from None
    except ValueError as exc:
        raise ArchiveError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ArchiveError("not valid JSON: nested too deeply") from None
    if not isinstance(value, dict) or value.get("format") != exports.ARCHIVE_FORMAT:
        raise ArchiveError(f'not a conversation archive (no "format": "{exports.ARCHIVE_FORMAT}")')
    version = value.get("version")
    if version != exports.ARCHIVE_VERSION:
        raise ArchiveError(
            f"archive version {version!r} is not supported (this server reads version "
            f"{exports.ARCHIVE_VERSION})"
        )
    return value


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


def _restore(archive: dict[str, Any]) -> Conversation:
    """Store an archive's conversation and everything it owns; the caller holds a transaction."""
    conversation = Conversation.objects.create(
        **_fields(
            Conversation, archive.get("conversation"), exports.CONVERSATION_FIELDS, "conversation"
        )
    )
    Participant.objects.bulk_create(
        Participant(
            conversation=conversation,
            **_fields(Participant, p, exports.PARTICIPANT_FIELDS, f"participants[{i}]"),
        )
        for i, p in enumerate(_list(archive, "participants", "archive"))
    )
    for i, data in enumerate(_list(archive, "messages", "archive")):
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
        for i, e in enumerate(_list(archive, "events", "archive"))
    )
    ctx = ingest.Context(source=None)
    for i, data in enumerate(_list(archive, "batches", "archive")):
        where = f"batches[{i}]"
        meta = _fields(RRWebBatch, data, exports.BATCH_FIELDS, where)
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
        RRWebBatch.objects.filter(
            conversation=conversation, event_index=meta["event_index"]
        ).update(segment=meta["segment"], raw_size=meta["raw_size"])
    return conversation


def archive_import(data: bytes, *, name: str = "archive") -> ImportResult:
    """Import one archive (JSON or zstd-compressed JSON)."""
    try:
        archive = _decode(data)
    except ArchiveError as exc:
        return ImportResult(REFUSED, name, reason=str(exc))
    head = archive.get("conversation")
    uuid = head.get("uuid") if isinstance(head, dict) else None
    if not isinstance(uuid, str) or not uuid:
        return ImportResult(REFUSED, name, reason="conversation.uuid must be a non-empty string")
    if Conversation.objects.filter(uuid=uuid).exists():
        return ImportResult(SKIPPED, name, uuid, "already stored")
    try:
        with transaction.atomic():
            _restore(archive)
    except ArchiveError as exc:
        return ImportResult(REFUSED, name, uuid, str(exc))
    except IntegrityError as exc:
        return ImportResult(REFUSED, name, uuid, f"breaks a uniqueness rule: {exc}")
    except (TypeError, ValueError, DatabaseError) as exc:
        return ImportResult(REFUSED, name, uuid, f"a value has the wrong type: {exc}")
    return ImportResult(CREATED, name, uuid)


def path_import(path: Path) -> Iterator[ImportResult]:
    """Import an archive file, or every archive in a zip of them."""
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        yield ImportResult(REFUSED, str(path), reason=f"cannot be read: {exc}")
        return
    if not is_zip:
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield ImportResult(REFUSED, str(path), reason=f"cannot be read: {exc}")
            return
        yield archive_import(data, name=path.name)
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
                yield archive_import(bundle.read(info), name=name)
    except (zipfile.BadZipFile, OSError) as exc:
        yield ImportResult(REFUSED, str(path), reason=f"broken zip file: {exc}")
