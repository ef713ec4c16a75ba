"""rrweb batches: decoded, compressed and stored whole; never overwritten."""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F

from conversations import conf, rrweb
from conversations.ingest.conversations import conversation_get_or_create
from conversations.ingest.items import (
    Context,
    Item,
    Outcome,
    Rejection,
    Status,
    conflict,
    sha256_text,
)
from conversations.ingest.page_errors import page_errors_count, page_errors_insert
from conversations.ingest.sql import bump, extend, first_page, insert_many, table
from conversations.models import Conversation, RecordingPack, RejectedFrame, RRWebBatch
from conversations.protocol import ConversationEventRRWeb
from conversations.scrub import may_hold_card, scrub_events
from conversations.storage import (
    BATCH_COLUMNS,
    batch_sha256,
    events_cache_clear,
    events_compress,
    events_json_by_id,
    events_remember,
    pack_batches,
)

logger = logging.getLogger(__name__)


def batch_decode(ctx: Context, text: str, kind: str) -> rrweb.DecodedBatch:
    """Decode (and scrub) a batch, or take what batches_predecode did with it; RRWebError."""
    known = ctx.decoded.get((kind, text))
    if known is None:
        known = _decode(text, kind)
    if isinstance(known, rrweb.RRWebError):
        raise known
    return known


def _decode(text: str, kind: str) -> rrweb.DecodedBatch | rrweb.RRWebError:
    scrub = scrub_events if conf.get("REPLAY_SCRUB") and may_hold_card(text) else None
    try:
        return rrweb.decode_batch(text, kind=kind, scrub=scrub)
    except rrweb.RRWebError as exc:
        return exc


def batches_predecode(items: list[Item]) -> dict[tuple[str, str], object]:
    """Decode the whole batches among `items` ahead of their transaction.

    Decoding is the slow part of storing a batch (inflating packer data, parsing, scrubbing),
    and inside a transaction it would hold its locks (on SQLite, the whole database's) for
    as long. Done first, the transaction only compresses and writes.
    """
    decoded: dict[tuple[str, str], object] = {}
    for candidates in _rrweb_candidates(items).values():
        for candidate in candidates:
            key = (candidate.kind, candidate.text)
            if key not in decoded:
                decoded[key] = _decode(candidate.text, candidate.kind)
    return decoded


def batch_store(
    ctx: Context,
    conversation: Conversation,
    *,
    event_index: int,
    kind: str,
    text: str,
    digest: str,
    received_at: datetime,
) -> str:
    """Decode, compress and store a whole batch; never overwrite a stored one."""
    # One query answers three questions: is this index stored already, which segment does
    # it continue, and which full-snapshot batch is its compression base. The nearest
    # stored batch at or below the index knows all three, since nothing lies between them.
    nearest = (
        RRWebBatch.objects.filter(conversation=conversation, event_index__lte=event_index)
        .order_by("-event_index")
        .values(
            "id", "event_index", "sha256", "segment", "full_snapshots", "base_id", "base__sha256"
        )
        .first()
    )
    if nearest is not None and nearest["event_index"] == event_index:
        _check_same(conversation, event_index, nearest["sha256"], digest)
        return Status.DUPLICATE
    pack = _pack_at_or_below(conversation.pk, event_index)
    if pack is not None:
        packed = _packed_sha256(pack, event_index)
        if packed is not None:
            _check_same(conversation, event_index, packed, digest)
            return Status.DUPLICATE
        if nearest is None or nearest["event_index"] < pack.last_event_index:
            # The nearest earlier batch is packed: continue its segment, compress alone.
            nearest = {"segment": pack.segment, "full_snapshots": 0, "base_id": None}
    try:
        decoded = batch_decode(ctx, text, kind)
    except rrweb.RRWebError as exc:
        raise Rejection(RejectedFrame.Kind.INVALID, str(exc)) from exc
    base_id, base_json = None, None
    if nearest is not None and not decoded.full_snapshots and "id" in nearest:
        if nearest["full_snapshots"]:
            base_id, base_sha = nearest["id"], nearest["sha256"]
        else:
            base_id, base_sha = nearest["base_id"], nearest["base__sha256"]
        if base_id is not None:
            base_json = events_json_by_id(base_id, base_sha)
    blob = events_compress(decoded.events_json, base=base_json)
    segment = (nearest["segment"] if nearest else 0) + (kind == RRWebBatch.KIND_INIT)
    batch = RRWebBatch.objects.create(
        conversation=conversation,
        event_index=event_index,
        kind=kind,
        segment=segment,
        first_ts=decoded.first_ts,
        last_ts=decoded.last_ts,
        event_count=decoded.count,
        full_snapshots=decoded.full_snapshots,
        href=decoded.href or "",
        raw_size=len(text.encode("utf-8", "surrogatepass")),
        sha256=digest,
        stored_size=len(blob),
        data=blob,
        base_id=base_id,
        received_at=received_at,
        source=ctx.source,
    )
    if kind == RRWebBatch.KIND_INIT:
        # An init that arrives after later batches starts their segment: renumber them. (A
        # pack spanning the init keeps its number: packs are of finished page loads, so an
        # init arriving inside one would be one that came very late; its batches stay whole.)
        RRWebBatch.objects.filter(conversation=conversation, event_index__gt=event_index).update(
            segment=F("segment") + 1
        )
        RecordingPack.objects.filter(
            conversation=conversation, first_event_index__gt=event_index
        ).update(segment=F("segment") + 1)
    bump(ctx, conversation, "rrweb_batch_total")
    bump(ctx, conversation, "rrweb_event_total", decoded.count)
    page_errors_count(ctx, conversation, decoded)
    page_errors_insert(
        conversation_id=conversation.pk, event_index=event_index, errors=decoded.errors
    )
    if decoded.scrubbed:
        bump(ctx, conversation, "scrubbed_total", decoded.scrubbed)
    extend(ctx, conversation, decoded.first_ts, decoded.last_ts, received_at)
    first_page(ctx, conversation, event_index, decoded.href or "")
    # Ids only: an import stores every batch of an archive through here in one context, and
    # holding each batch's events until the end would hold the whole archive.
    ctx.notifications.append((conversation.uuid, {"kind": "rrweb", "id": batch.pk}))
    return Status.STORED


def _check_same(conversation: Conversation, event_index: int, stored: str, digest: str) -> None:
    """Raise a conflict unless the stored batch at event_index has this content."""
    if stored != digest:
        raise conflict(
            f"event_index {event_index} of conversation {conversation.uuid} is already stored "
            f"with different content (sha256 {stored[:12]}…, this frame {digest[:12]}…)"
        )


def _pack_at_or_below(conversation_id: int, event_index: int) -> RecordingPack | None:
    """The pack holding or last before event_index, if any (without its data)."""
    return (
        RecordingPack.objects.filter(
            conversation_id=conversation_id, first_event_index__lte=event_index
        )
        .order_by("-first_event_index")
        .defer("data")
        .first()
    )


def _packed_sha256(pack: RecordingPack, event_index: int) -> str | None:
    """The sha256 of the batch at event_index in `pack`, or None if the pack lacks it."""
    if not pack.first_event_index <= event_index <= pack.last_event_index:
        return None
    for batch in pack_batches(pack):
        if batch.event_index == event_index:
            return batch_sha256(batch)
    return None


def stored_sha256(conversation: Conversation, event_index: int) -> str | None:
    """The sha256 of the stored batch at event_index, in a row or a pack, or None."""
    row = (
        RRWebBatch.objects.filter(conversation_id=conversation.pk, event_index=event_index)
        .values_list("sha256", flat=True)
        .first()
    )
    if row is not None:
        return row
    pack = _pack_at_or_below(conversation.pk, event_index)
    return _packed_sha256(pack, event_index) if pack is not None else None


# The bulk path for rrweb batches ------------------------------------------------------------
#
# Most frames are rrweb batches appended to the end of their recording: whole, or all parts
# in one group. Those are checked in memory and inserted with one statement per group, which
# is what keeps ingest close to the speed of reading the socket. Anything else (a batch below
# what is stored, parts still incomplete, anything that fails a check) is left to the
# per-frame path above, which knows every rule.


@dataclass
class _Candidate:
    numbers: list[int]  # the items (frames) that carried this batch
    uuid: str
    event_index: int
    kind: str
    text: str
    digest: str
    received_at: datetime
    duplicates: list[int] = field(default_factory=list)


def _rrweb_candidates(items: list[Item]) -> dict[str, list[_Candidate]]:
    """Whole batches in this group, by conversation: single frames and completed parts."""
    whole: dict[tuple[str, int], _Candidate] = {}
    parts: dict[tuple[str, int], dict[int, tuple[int, ConversationEventRRWeb]]] = {}
    refused: set[tuple[str, int]] = set()
    for number, item in enumerate(items):
        envelope = item.envelope
        if item.reject_kind or envelope is None or envelope.event_type != "rrweb":
            continue
        event = envelope.payload
        uuid = envelope.conversation_uuid
        if not isinstance(event, ConversationEventRRWeb) or not uuid:
            continue
        key = (uuid, event.event_index)
        if event.is_multipart:
            received = parts.setdefault(key, {})
            if event.data_part in received:
                refused.add(key)  # a part twice in one group: let the careful path sort it
            received[event.data_part] = (number, event)
            continue
        digest = event.data_total_sha256 or event.data_sha256 or sha256_text(event.data)
        if key in whole:
            if whole[key].digest == digest:
                whole[key].duplicates.append(number)
            else:
                refused.add(key)
            continue
        whole[key] = _Candidate(
            [number], uuid, event.event_index, event.type, event.data, digest, item.received_at
        )
    for key, received in parts.items():
        events = [event for _, event in received.values()]
        first = events[0]
        shape = {(e.data_total_parts, e.data_total_sha256, e.type) for e in events}
        if key in whole or len(shape) != 1 or len(received) != first.data_total_parts:
            refused.add(key)
            continue
        text = "".join(received[number][1].data for number in sorted(received))
        if sha256_text(text) != first.data_total_sha256:
            refused.add(key)
            continue
        numbers = [number for number, _ in received.values()]
        whole[key] = _Candidate(
            numbers,
            key[0],
            key[1],
            first.type,
            text,
            first.data_total_sha256 or "",
            items[max(numbers)].received_at,
        )
    by_conversation: dict[str, list[_Candidate]] = defaultdict(list)
    for key, candidate in whole.items():
        if key not in refused:
            by_conversation[candidate.uuid].append(candidate)
    return by_conversation


def rrweb_bulk_apply(items: list[Item], ctx: Context) -> dict[int, Outcome]:
    """The bulk path, falling back to the per-frame path for all if it fails for a bug."""
    saved = ctx.save()
    try:
        with transaction.atomic():
            return _rrweb_bulk_apply(items, ctx)
    except IntegrityError:
        # Another connection stored one of these meanwhile: the per-frame path decides.
        ctx.restore(saved)
        events_cache_clear()  # ids handed out in the rolled-back savepoint come back
        return {}
    except DatabaseError:
        raise
    except Exception:  # the per-frame path stores or keeps aside each frame on its own
        logger.exception("bulk rrweb path failed; storing this group frame by frame")
        ctx.restore(saved)
        return {}


class ConversationRef:
    """Just enough of a conversation for the bulk path: its key and uuid."""

    __slots__ = ("pk", "uuid")

    def __init__(self, pk: int, uuid: str) -> None:
        self.pk = pk


def _conversation_ref(ctx: Context, uuid: str) -> ConversationRef:
    known = ctx.conversations.get(uuid)
    if known is not None:
        return ConversationRef(known.pk, uuid)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table(Conversation)} WHERE uuid = %s", [uuid])
        row = cursor.fetchone()
    if row is None:
        return ConversationRef(conversation_get_or_create(ctx, uuid=uuid).pk, uuid)
    return ConversationRef(row[0], uuid)


# Each conversation's last stored batch (with its compression base's sha256), and its last
# pack: for all the conversations of a round in two queries, not two each.
_LAST_BATCHES_SQL = """
    SELECT b.conversation_id,
        b.id, b.event_index, b.sha256, b.segment, b.full_snapshots, b.base_id, base.sha256
    FROM {batch} b LEFT JOIN {batch} base ON base.id = b.base_id
    WHERE b.conversation_id IN ({marks}) AND b.event_index = (
        SELECT MAX(m.event_index) FROM {batch} m WHERE m.conversation_id = b.conversation_id
    )
"""
_LAST_PACKS_SQL = """
    SELECT p.conversation_id, p.last_event_index, p.segment FROM {pack} p
    WHERE p.conversation_id IN ({marks}) AND p.last_event_index = (
        SELECT MAX(q.last_event_index) FROM {pack} q WHERE q.conversation_id = p.conversation_id
    )
"""


def _recording_ends(pks: list[int]) -> tuple[dict[int, tuple], dict[int, tuple]]:
    """(last batch row, last pack row) by conversation, for those that have one."""
    if not pks:
        return {}, {}
    marks = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cursor.execute(_LAST_BATCHES_SQL.format(batch=table(RRWebBatch), marks=marks), pks)
        batches = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute(_LAST_PACKS_SQL.format(pack=table(RecordingPack), marks=marks), pks)
        packs = {row[0]: row[1:] for row in cursor.fetchall()}
    return batches, packs


def _batches_insert(rows: list[dict]) -> None:
    """Insert batch rows of one conversation, in as few statements as their bases allow.

    A row may take an earlier row of the same group as its compression base, and needs its
    id: each statement ends with a full-snapshot row (a base), so bases are known in time.
    """
    statement: list[dict] = []
    for number, row in enumerate(rows):
        statement.append(row)
        if row["full_snapshots"] or number == len(rows) - 1:
            for pending in statement:
                if pending["base_row"] is not None:
                    pending["base_id"] = pending["base_row"]["id"]
            values = [{column: r[column] for column in BATCH_COLUMNS} for r in statement]
            ids = {index: id_ for id_, index in insert_many(RRWebBatch, values, key="event_index")}
            for inserted in statement:
                inserted["id"] = ids[inserted["event_index"]]
            statement = []


def _rrweb_bulk_apply(items: list[Item], ctx: Context) -> dict[int, Outcome]:
    """Store appended rrweb batches in bulk; return the outcomes of the items it handled."""
    outcomes: dict[int, Outcome] = {}
    groups = _rrweb_candidates(items)
    refs = {uuid: _conversation_ref(ctx, uuid) for uuid in groups}
    last_batches, last_packs = _recording_ends(sorted(ref.pk for ref in refs.values()))
    for uuid, candidates in groups.items():
        conversation = refs[uuid]
        last = last_batches.get(conversation.pk)
        pack = last_packs.get(conversation.pk)
        if pack is not None and (last is None or pack[0] > last[1]):
            # The recording's end is packed: continue its segment, with no base in a row.
            last = (None, pack[0], "", pack[1], 0, None, None)
        floor = last[1] if last else -1
        appended = sorted(
            (c for c in candidates if c.event_index > floor), key=lambda c: c.event_index
        )
        if not appended:
            continue
        segment = last[3] if last else 0
        # The compression base: (id or None while it is a row of this group, sha256, events).
        base: tuple[int | None, str, bytes | None] | None = None
        if last is not None and last[0] is not None:
            if last[4]:
                base = (last[0], last[2], None)
            elif last[5] is not None:
                base = (last[5], last[6], None)
        rows: list[tuple[_Candidate, dict]] = []
        for candidate in appended:
            try:
                decoded = batch_decode(ctx, candidate.text, candidate.kind)
            except rrweb.RRWebError:
                break  # the per-frame path rejects it; later batches follow it there
            segment += candidate.kind == RRWebBatch.KIND_INIT
            source = items[candidate.numbers[0]].source or ctx.source
            row = {
                "conversation_id": conversation.pk,
                "event_index": candidate.event_index,
                "kind": candidate.kind,
                "segment": segment,
                "first_ts": decoded.first_ts,
                "last_ts": decoded.last_ts,
                "event_count": decoded.count,
                "full_snapshots": decoded.full_snapshots,
                "href": decoded.href or "",
                "raw_size": len(candidate.text.encode("utf-8", "surrogatepass")),
                "sha256": candidate.digest,
                "received_at": candidate.received_at,
                "source_id": source.pk if source is not None else None,
                "base_id": None,
                "base_row": None,
            }
            if decoded.full_snapshots:
                row["data"] = events_compress(decoded.events_json)
                base = (None, candidate.digest, decoded.events_json)
                row["anchor"] = row
            else:
                if base is not None and base[2] is None:
                    base = (base[0], base[1], events_json_by_id(base[0], base[1]))
                row["data"] = events_compress(decoded.events_json, base=base[2] if base else None)
                row["base_id"] = base[0] if base else None
                row["base_row"] = rows[-1][1]["anchor"] if base and base[0] is None else None
                row["anchor"] = rows[-1][1]["anchor"] if rows else None
            row["stored_size"] = len(row["data"])
            row["decoded"] = decoded  # for its errors' rows, once the batch rows are in
            rows.append((candidate, row))
            bump(ctx, conversation, "rrweb_batch_total")
            bump(ctx, conversation, "rrweb_event_total", decoded.count)
            page_errors_count(ctx, conversation, decoded)
            if decoded.scrubbed:
                bump(ctx, conversation, "scrubbed_total", decoded.scrubbed)
            extend(ctx, conversation, decoded.first_ts, decoded.last_ts, candidate.received_at)
            first_page(ctx, conversation, candidate.event_index, decoded.href or "")
        if not rows:
            continue
        # No savepoint of its own: a conversation's batches are claimed by one worker at a
        # time, so another connection storing one meanwhile is rare enough to cost the whole
        # group the per-frame path (rrweb_bulk_apply), where two round trips a conversation
        # every round would not be.
        _batches_insert([row for _, row in rows])
        for _, row in rows:
            page_errors_insert(
                conversation_id=conversation.pk,
                event_index=row["event_index"],
                errors=row["decoded"].errors,
            )
            if row["full_snapshots"]:
                events_remember(row["id"], row["sha256"], row["decoded"].events_json)
        for candidate, row in rows:
            for number in candidate.numbers:
                outcomes[number] = Outcome(Status.STORED, conversation_uuid=uuid)
            for number in candidate.duplicates:
                outcomes[number] = Outcome(Status.DUPLICATE, conversation_uuid=uuid)
            # With its events, which live updates then need not read back (a round's worth).
            note = {"kind": "rrweb", "id": row["id"], "events_json": row["decoded"].events_json}
            ctx.notifications.append((uuid, note))
        joined = [c.event_index for c, _ in rows if len(c.numbers) > 1]
        if joined:
            ctx.joined.append((conversation, joined))  # their pending parts go next
    return outcomes
