"""How rrweb batches are stored: the one codec that writers and readers share.

A batch's events (a JSON array, as text) are stored zstd-compressed in an RRWebBatch row, on
their own or against the latest full-snapshot batch of their page load (`base`), since
mutations repeat the page's DOM. Once a page load is over, its batches move into one
RecordingPack: `data` is their events compressed together (rrweb.compress_segment) against
the first batch of the conversation's first pack (`base`), or, for that first pack, against
a RecordingDictionary that many conversations share (`dictionary`, if any); `index` is
their fields, one PackIndexEntry each, as compressed JSON. Readers see packed and unpacked
batches alike, as BatchMeta records.
"""

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from conversations import conf, rrweb
from conversations.models import RecordingDictionary, RecordingPack, RRWebBatch

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BatchMeta(NamedTuple):
    """A stored batch as readers see it, packed or not: the fields that travel to the pages,
    the API and the archive, then where its events are (a row, or a place in a pack)."""

    event_index: int
    kind: str
    segment: int
    first_ts: int
    last_ts: int
    event_count: int
    full_snapshots: int
    href: str
    raw_size: int
    # "" when a pack left it out because it is that of the events text: see batch_sha256.
    sha256: str
    received_at: datetime
    row_id: int | None = None
    pack_id: int | None = None
    position: int = 0


# The fields a batch travels with, in the model's names: the archive's batch object
# (docs/archive-format.md) holds exactly these.
BATCH_FIELDS: tuple[str, ...] = BatchMeta._fields[: BatchMeta._fields.index("row_id")]
# The columns of an RRWebBatch row, as the ingest services insert it.
BATCH_COLUMNS: tuple[str, ...] = (
    "conversation_id",
    *BATCH_FIELDS,
    "stored_size",
    "data",
    "base_id",
    "source_id",
)
# What reading a row's events needs, for .only() on batch queries.
BATCH_READ_FIELDS = ("id", "sha256", "data", "base_id", "full_snapshots")


class PackIndexEntry(NamedTuple):
    """One batch's fields in a pack's index, in the order the index stores them."""

    event_index: int
    kind: str
    first_ts: int
    last_ts: int
    event_count: int
    full_snapshots: int
    href: str
    raw_size: int
    # None when it equals the SHA-256 of the stored events text, as it does whenever the
    # client sent a JSON array (as rrweb clients do): 64 bytes a batch saved.
    sha256: str | None
    received_us: int
    source_id: int | None

    @classmethod
    def of(cls, batch: RRWebBatch, events_json: bytes) -> "PackIndexEntry":
        """The entry of a row-stored batch whose events are `events_json`."""
        sha = batch.sha256 if batch.sha256 != hashlib.sha256(events_json).hexdigest() else None
        delta = batch.received_at - _EPOCH
        return cls(
            batch.event_index,
            batch.kind,
            batch.first_ts,
            batch.last_ts,
            batch.event_count,
            batch.full_snapshots,
            batch.href,
            batch.raw_size,
            sha,
            (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,
            batch.source_id,
        )

    def meta(self, *, segment: int, pack_id: int, position: int) -> BatchMeta:
        return BatchMeta(
            event_index=self.event_index,
            kind=self.kind,
            segment=segment,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            event_count=self.event_count,
            full_snapshots=self.full_snapshots,
            href=self.href,
            raw_size=self.raw_size,
            sha256=self.sha256 or "",
            received_at=_EPOCH + timedelta(microseconds=self.received_us),
            pack_id=pack_id,
            position=position,
        )


def row_meta(batch: RRWebBatch) -> BatchMeta:
    """A row-stored batch as readers see it."""
    return BatchMeta(*(getattr(batch, name) for name in BATCH_FIELDS), row_id=batch.pk)


# Batches as rows ------------------------------------------------------------------------------


def events_compress(events_json: bytes, *, base: bytes | None = None) -> bytes:
    """A batch's events as a row stores them, against its base's events if it has one."""
    return rrweb.compress(events_json, base=base, level=conf.get("REPLAY_ZSTD_LEVEL"))


# Recently read events by (row id, sha256): bases are read again for every batch that follows
# them. Keyed by content too, since a rolled-back transaction can hand an id to another batch.
_EVENTS_CACHE: dict[tuple[int, str], bytes] = {}
_EVENTS_CACHE_LIMIT = 256
_PACK_CACHE: dict[int, list[bytes]] = {}
_PACK_CACHE_LIMIT = 8


def _remember(cache: dict, limit: int, key: object, value: object) -> None:
    if len(cache) >= limit:
        cache.pop(next(iter(cache)))
    cache[key] = value


def row_events_json(batch: RRWebBatch) -> bytes:
    """A row-stored batch's events as JSON array text; `batch` has BATCH_READ_FIELDS loaded."""
    cache_key = (batch.pk, batch.sha256)
    cached = _EVENTS_CACHE.get(cache_key)
    if cached is not None:
        return cached
    base_json = None
    if batch.base_id is not None:
        base_json = row_events_json(
            RRWebBatch.objects.only(*BATCH_READ_FIELDS).get(pk=batch.base_id)
        )
    events_json = rrweb.decompress(bytes(batch.data), base=base_json)
    if batch.full_snapshots:
        _remember(_EVENTS_CACHE, _EVENTS_CACHE_LIMIT, cache_key, events_json)
    return events_json


def events_remember(batch_id: int, sha256: str, events_json: bytes) -> None:
    """Keep a full-snapshot batch just written: the batches after it compress against it."""
    _remember(_EVENTS_CACHE, _EVENTS_CACHE_LIMIT, (batch_id, sha256), events_json)


def events_json_by_id(batch_id: int, sha256: str) -> bytes:
    """A row-stored batch's events by id; `sha256` (its content hash) guards the cache."""
    cached = _EVENTS_CACHE.get((batch_id, sha256))
    if cached is not None:
        return cached
    return row_events_json(RRWebBatch.objects.only(*BATCH_READ_FIELDS).get(pk=batch_id))


# Packs --------------------------------------------------------------------------------------


class PackContent(NamedTuple):
    """What a RecordingPack stores of its batches: their events, and their index."""

    data: bytes
    index: bytes


def pack_build(batches: list[RRWebBatch], texts: list[bytes], *, base: bytes | None) -> PackContent:
    """Compress a page load's batches, whose events are `texts`, into a pack's content."""
    data = rrweb.compress_segment(texts, base=base, level=conf.get("REPLAY_PACK_LEVEL"))
    entries = [PackIndexEntry.of(batch, text) for batch, text in zip(batches, texts, strict=True)]
    index = rrweb.compress(json.dumps(entries, separators=(",", ":")).encode(), level=19)
    return PackContent(data, index)


def pack_index(index: bytes) -> list[PackIndexEntry]:
    """A pack's index, read."""
    return [PackIndexEntry(*entry) for entry in json.loads(rrweb.decompress(bytes(index)))]


def pack_batches(pack: RecordingPack) -> list[BatchMeta]:
    """The batches a pack holds, as readers see them; `pack` has its index loaded."""
    return [
        entry.meta(segment=pack.segment, pack_id=pack.pk, position=position)
        for position, entry in enumerate(pack_index(pack.index))
    ]


def pack_events_json(pack_id: int) -> list[bytes]:
    """The events JSON of every batch in a pack, in order."""
    # Packs are only written by the packing job, in their own transactions, so an id here
    # always names committed content.
    found = _PACK_CACHE.get(pack_id)
    if found is None:
        data, base_id, dictionary_id = RecordingPack.objects.values_list(
            "data", "base_id", "dictionary_id"
        ).get(pk=pack_id)
        base = None
        if base_id is not None:
            base = pack_events_json(base_id)[0]
        elif dictionary_id is not None:
            base = dictionary_text(dictionary_id)
        found = rrweb.decompress_segment(bytes(data), base=base)
        _remember(_PACK_CACHE, _PACK_CACHE_LIMIT, pack_id, found)
    return found


# Shared dictionaries --------------------------------------------------------------------------

_DICTIONARY_CACHE: dict[int, bytes] = {}
_DICTIONARY_CACHE_LIMIT = 4


def dictionary_text(dictionary_id: int) -> bytes:
    """A shared dictionary's text (b"" when its samples shared nothing: no dictionary)."""
    found = _DICTIONARY_CACHE.get(dictionary_id)
    if found is None:
        data = RecordingDictionary.objects.values_list("data", flat=True).get(pk=dictionary_id)
        found = rrweb.decompress(bytes(data))
        _remember(_DICTIONARY_CACHE, _DICTIONARY_CACHE_LIMIT, dictionary_id, found)
    return found


def dictionary_newest() -> tuple[int, bytes] | None:
    """The id and text of the dictionary new first packs are compressed against, if any."""
    newest = RecordingDictionary.objects.values_list("pk", flat=True).first()
    return (newest, dictionary_text(newest)) if newest is not None else None


def dictionary_create(text: bytes, *, sample_count: int) -> RecordingDictionary:
    """Store a shared dictionary of `text`, built from `sample_count` conversations."""
    return RecordingDictionary.objects.create(
        data=rrweb.compress(text, level=19), size=len(text), sample_count=sample_count
    )


# Either --------------------------------------------------------------------------------------


def batch_events_json(batch: BatchMeta) -> bytes:
    """A stored batch's events as JSON array text, from its pack or its row."""
    if batch.pack_id is not None:
        return pack_events_json(batch.pack_id)[batch.position]
    assert batch.row_id is not None
    return events_json_by_id(batch.row_id, batch.sha256)


def batch_sha256(batch: BatchMeta, events_json: bytes | None = None) -> str:
    """A batch's SHA-256 as sent; a pack leaves it out where its events text gives it.

    `events_json`, the batch's events if the caller has read them, spares reading them again.
    """
    if batch.sha256:
        return batch.sha256
    if events_json is None:
        events_json = batch_events_json(batch)
    return hashlib.sha256(events_json).hexdigest()


def events_json_each(batches: Iterable[BatchMeta]) -> Iterator[tuple[BatchMeta, bytes]]:
    """Each batch with its events JSON, reading rows' data a few at a time."""
    chunk: list[BatchMeta] = []
    for batch in batches:
        chunk.append(batch)
        if len(chunk) == 64:
            yield from _chunk_events(chunk)
            chunk = []
    yield from _chunk_events(chunk)


def _chunk_events(chunk: list[BatchMeta]) -> Iterator[tuple[BatchMeta, bytes]]:
    ids = [batch.row_id for batch in chunk if batch.row_id is not None]
    rows = RRWebBatch.objects.only(*BATCH_READ_FIELDS).in_bulk(ids) if ids else {}
    for batch in chunk:
        if batch.row_id is not None:
            yield batch, row_events_json(rows[batch.row_id])
        else:
            yield batch, batch_events_json(batch)


def events_cache_clear() -> None:
    """Forget cached events: a long export must not keep every conversation's bases, and ids
    handed out in a rolled-back transaction may come back with other content."""
    _EVENTS_CACHE.clear()
    _PACK_CACHE.clear()
    _DICTIONARY_CACHE.clear()
