"""Frames as the services see them: items, outcomes, the group context, rejections."""

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from django.utils import timezone

from conversations import conf
from conversations.models import Conversation, IngestKey, RejectedFrame
from conversations.protocol import Envelope, ProtocolError, parse_frame
from conversations.scrub import scrub_strings


class Status(StrEnum):
    """What became of a frame."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    PENDING = "pending"
    REJECTED = "rejected"


@dataclass(slots=True)
class Item:
    """One frame as received: its envelope when it parsed, else the rejection to keep."""

    text: str | None
    received_at: datetime
    size: int
    envelope: Envelope | None = None
    binary: bytes | None = None
    reject_kind: str | None = None
    reject_reason: str | None = None
    source: IngestKey | None = None  # who sent it, when a group mixes sources
    scrubbed: int = 0  # card numbers (and the like) masked out of it before parsing
    sha256: str | None = None  # of the whole frame, when only its first bytes came along


@dataclass(slots=True)
class Outcome:
    """What became of one item, and the reply the source is owed for it, if any."""

    status: str
    reason: str = ""
    conversation_uuid: str = ""
    reply: dict | None = None


@dataclass
class Context:
    """State shared by the items of one group: the source, caches and counter deltas."""

    source: IngestKey | None
    conversations: dict[str, Conversation] = field(default_factory=dict)
    deltas: dict[int, dict[str, int | tuple]] = field(default_factory=lambda: defaultdict(dict))
    notifications: list[tuple[str, dict]] = field(default_factory=list)
    # Batches the bulk path joined from parts: (conversation, event indexes).
    joined: list[tuple[object, list[int]]] = field(default_factory=list)
    # Batches decoded before the transaction: (kind, text) -> DecodedBatch or RRWebError.
    decoded: dict[tuple[str, str], object] = field(default_factory=dict)

    def save(self) -> tuple[int, int, dict[int, dict[str, int]]]:
        """What a savepoint may change here, to put back if it is rolled back."""
        deltas = {pk: dict(d) for pk, d in self.deltas.items()}
        return len(self.notifications), len(self.joined), deltas

    def restore(self, saved: tuple[int, int, dict[int, dict[str, int]]]) -> None:
        noted, joined, deltas = saved
        del self.notifications[noted:]
        del self.joined[joined:]
        self.deltas.clear()
        self.deltas.update(deltas)
        # Cached rows may have been created or changed inside the rolled-back savepoint.
        self.conversations.clear()


_ABSENT = object()


def item_from_text(text: str, *, received_at: datetime | None = None) -> Item:
    """Parse one text frame into an Item, turning protocol errors into a rejection."""
    received_at = received_at or timezone.now()
    # Frames are mostly ASCII (JSON escapes the rest): then the length is the byte count,
    # known without copying the frame to encode it.
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    max_bytes = conf.get("REPLAY_MAX_FRAME_BYTES")
    if size > max_bytes:
        return Item(
            text=text,
            received_at=received_at,
            size=size,
            reject_kind=RejectedFrame.Kind.TOO_LARGE,
            reject_reason=f"frame is {size} bytes, over the limit of {max_bytes} bytes",
        )
    scrubbed = 0

    def scrub(obj: dict) -> None:
        # Every string of the envelope but the rrweb data, which is scrubbed once decoded.
        nonlocal scrubbed
        rrweb = obj.get("event_rrweb")
        data = rrweb.pop("data", _ABSENT) if isinstance(rrweb, dict) else _ABSENT
        scrubbed = scrub_strings(obj, identifiers=True) if conf.get("REPLAY_SCRUB") else 0
        if data is not _ABSENT:
            rrweb["data"] = data

    try:
        envelope = parse_frame(text, prepare=scrub)
    except ProtocolError as exc:
        return Item(
            text=text,
            received_at=received_at,
            size=size,
            reject_kind=RejectedFrame.Kind.INVALID,
            reject_reason=str(exc),
        )
    return Item(text=text, received_at=received_at, size=size, envelope=envelope, scrubbed=scrubbed)


def item_from_binary(data: bytes, *, received_at: datetime | None = None) -> Item:
    """Wrap a binary frame, which the protocol does not allow, as a rejection."""
    return Item(
        text=None,
        binary=data,
        received_at=received_at or timezone.now(),
        size=len(data),
        reject_kind=RejectedFrame.Kind.BINARY,
        reject_reason="binary frames are not part of the protocol: send each envelope as JSON text",
    )


class Rejection(Exception):
    """Raised inside a service to roll back its savepoint and keep the frame aside."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def conflict(reason: str) -> Rejection:
    return Rejection(RejectedFrame.Kind.CONFLICT, reason)


def canonical_sha256(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
