"""Frames kept aside with their reason: nothing sent is ever silently dropped."""

import hashlib
import json

from conversations import conf
from conversations.ingest.items import Context, Item
from conversations.models import IngestKey, RejectedFrame
from conversations.scrub import scrub_text


def _storable(text: str) -> str:
    """Text any database column holds: a lone surrogate becomes "?", a NUL U+FFFD."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _scrubbed(text: str) -> str:
    """A kept frame holds no card number either (its sha256 is of the frame as sent)."""
    return scrub_text(text)[0] if conf.get("REPLAY_SCRUB") else text


def guess_uuid(text: str | None) -> str:
    if not text or len(text) > 4 * 1024 * 1024:
        return ""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return ""
    uuid = value.get("conversation_uuid") if isinstance(value, dict) else None
    return uuid[:100] if isinstance(uuid, str) else ""


def reject(
    item: Item,
    ctx: Context,
    *,
    kind: str,
    reason: str,
    uuid: str | None,
    source: IngestKey | None = None,
) -> RejectedFrame:
    source = source or ctx.source
    keep = conf.get("REPLAY_REJECTED_KEEP_BYTES")
    text = item.text or ""
    binary = item.binary
    truncated = False
    if text and item.size > keep:
        text = text.encode("utf-8", "surrogatepass")[:keep].decode("utf-8", "ignore")
        truncated = True
    if binary is not None and len(binary) > keep:
        binary = binary[:keep]
        truncated = True
    whole = (
        item.binary
        if item.binary is not None
        else (item.text or "").encode("utf-8", "surrogatepass")
    )
    # The socket may have kept only the frame's first bytes (too large, binary).
    truncated = truncated or len(whole) < item.size
    text = _scrubbed(text)
    safe_text = _storable(text)
    if binary is None and safe_text != text:
        # The text column gets a readable copy, this the exact bytes (scrubbed).
        binary = text.encode("utf-8", "surrogatepass")[:keep]
    return RejectedFrame.objects.create(
        kind=kind,
        reason=_storable(reason),
        received_at=item.received_at,
        source=source,
        source_name=source.name if source else "",
        # Only for finding it again: a readable form of whatever the frame named.
        conversation_uuid=_storable(uuid or "")[:100],
        text=safe_text,
        binary=binary,
        size=item.size,
        truncated=truncated,
        sha256=item.sha256 or hashlib.sha256(whole).hexdigest(),
    )
