"""Decode, summarise and compress rrweb batches. Pure: no Django."""

from __future__ import annotations

import json
import math
import re
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import zstandard

from conversations import fastjson
from conversations.protocol import ProtocolError, json_type

__all__ = [
    "DEFAULT_LEVEL",
    "DecodedBatch",
    "EventType",
    "Limits",
    "PageError",
    "RRWebError",
    "SEGMENT_LEVEL",
    "compress",
    "compress_segment",
    "console_error_count",
    "decode_batch",
    "decompress",
    "decompress_segment",
    "limits_now",
    "load_events",
    "network_error_count",
    "page_errors",
    "page_errors_of",
    "shared_text",
    "unpack",
]

FIELD = "event_rrweb.data"
# Packer strings are inflated this many bytes at a time, so a cap is noticed within a step of
# being crossed: a 0.5 MB zlib bomb never gets to allocate the 256 MiB it would inflate to.
INFLATE_STEP = 256 * 1024
# The inflate ratio is only held against strings inflating past this: tiny events of repeated
# keys compress far better than 100:1, and are harmless.
RATIO_FLOOR = 1024 * 1024
# Epoch ms; beyond 2**53 a JavaScript number (and a float) cannot hold it exactly.
MAX_TIMESTAMP = 2**53
# Per batch at ingest: see bench/compression_study.py for the speed/ratio trade-off.
DEFAULT_LEVEL = 6
# Compaction of a finished segment runs off the ingest path, so it can afford more.
SEGMENT_LEVEL = 15
KINDS = ("init", "events")


class RRWebError(ProtocolError):
    """An rrweb batch that cannot be decoded or stored; the message says exactly why."""


class EventType(IntEnum):
    """rrweb's top-level event types."""

    DOM_CONTENT_LOADED = 0
    LOAD = 1
    FULL_SNAPSHOT = 2
    INCREMENTAL_SNAPSHOT = 3
    META = 4
    CUSTOM = 5
    PLUGIN = 6


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what one batch may unpack to; crossing one is an RRWebError naming its setting."""

    string_bytes: int
    batch_bytes: int
    ratio: int
    events: int


# Limits field -> the setting (conversations/conf.py) that configures it.
LIMIT_SETTINGS: dict[str, str] = {
    "string_bytes": "REPLAY_PACKED_MAX_STRING_BYTES",
    "batch_bytes": "REPLAY_PACKED_MAX_BATCH_BYTES",
    "ratio": "REPLAY_PACKED_MAX_RATIO",
    "events": "REPLAY_BATCH_MAX_EVENTS",
}


def limits_now() -> Limits:
    """The caps as configured now: the REPLAY_ settings, or their defaults outside Django."""
    # Imported here so that decoding stays usable (benchmarks, scripts) without Django set up.
    from django.core.exceptions import ImproperlyConfigured

    from conversations import conf

    try:
        return Limits(**{name: conf.get(setting) for name, setting in LIMIT_SETTINGS.items()})
    except ImproperlyConfigured:
        return Limits(**{name: conf.DEFAULTS[setting] for name, setting in LIMIT_SETTINGS.items()})


class _Budget:
    """What a batch has unpacked so far, against its Limits."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.inflated = 0
        self.events = 0

    def room(self, inflated: int) -> int:
        """Bytes a string that has inflated to `inflated` may still add."""
        return min(self.limits.string_bytes, self.limits.batch_bytes - self.inflated) - inflated

    def check_inflated(self, inflated: int, compressed: int) -> None:
        """Refuse a string that, having inflated to `inflated` bytes so far, crosses a cap."""
        limits = self.limits
        if inflated > limits.string_bytes:
            raise RRWebError(
                f"{FIELD}: a @rrweb/packer string inflates to more than "
                f"{limits.string_bytes} bytes ({LIMIT_SETTINGS['string_bytes']})"
            )
        if self.inflated + inflated > limits.batch_bytes:
            raise RRWebError(
                f"{FIELD}: the batch's @rrweb/packer strings inflate to more than "
                f"{limits.batch_bytes} bytes in all ({LIMIT_SETTINGS['batch_bytes']})"
            )
        if inflated > RATIO_FLOOR and inflated > limits.ratio * compressed:
            raise RRWebError(
                f"{FIELD}: a @rrweb/packer string of {compressed} bytes inflates more than "
                f"{limits.ratio} times ({LIMIT_SETTINGS['ratio']})"
            )

    def count(self, events: int) -> None:
        """Add a string's events to the batch's, refusing more than the cap."""
        self.events += events
        _check_count(self.events, self.limits)


def _check_count(events: int, limits: Limits) -> None:
    if events > limits.events:
        raise RRWebError(
            f"{FIELD}: the batch holds more than {limits.events} events "
            f"({LIMIT_SETTINGS['events']})"
        )


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """One validated rrweb batch, ready to store."""

    events_json: bytes
    count: int
    first_ts: int
    last_ts: int
    full_snapshots: int
    href: str | None
    encoding: str
    scrubbed: int = 0  # values masked by the `scrub` callable decode_batch was given
    errors: tuple[PageError, ...] = ()  # console entries and failed requests, in order
    console_errors: int = 0  # console entries at an error level (a warning is not one)
    network_errors: int = 0  # failed requests


def decode_batch(
    text: str,
    *,
    kind: str,
    limits: Limits | None = None,
    scrub: Callable[[list], int] | None = None,
) -> DecodedBatch:
    """Decode an rrweb batch text (JSON or @rrweb/packer output) and summarise it.

    `limits` defaults to the configured ones (limits_now), read at each call. `scrub`, if
    given, may change the decoded events in place and returns how many values it changed.
    """
    limits = limits or limits_now()
    if kind not in KINDS:
        raise RRWebError(f"event_rrweb.type must be 'init' or 'events', got {kind!r}")
    if not isinstance(text, str):
        raise RRWebError(f"{FIELD} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise RRWebError(f"{FIELD} is empty")
    if scrub is None:
        # Plain JSON events are stored as the text sent (packed ones, and scrubbed ones, are
        # written out again from their values): there orjson's values are only looked at.
        # A batch it refuses, or one that fails a check, goes the exact way below, which
        # says why with the numbers as sent.
        value = fastjson.loads(text, exact_numbers=False)
        if isinstance(value, dict) or (
            isinstance(value, list) and not any(isinstance(item, str) for item in value)
        ):
            try:
                return _decoded(value, text, kind=kind, budget=_Budget(limits), scrub=None)
            except RRWebError:
                pass
    budget = _Budget(limits)
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        json_error = _json_error(exc)
        try:
            unpacked = _unpack_value(text, budget)
        except _NotPacked as packer_exc:
            raise RRWebError(
                f"{FIELD} is neither JSON nor @rrweb/packer output: "
                f"JSON: {json_error}; packer: {packer_exc}"
            ) from None
        return _summarise(unpacked, kind=kind, encoding="packed", limits=budget.limits, scrub=scrub)
    return _decoded(value, text, kind=kind, budget=budget, scrub=scrub)


def _decoded(
    value: Any, text: str, *, kind: str, budget: _Budget, scrub: Callable[[list], int] | None
) -> DecodedBatch:
    """Summarise a batch from its parsed JSON `value` (events, or packer output in it)."""
    if isinstance(value, dict):
        return _summarise(
            [value],
            kind=kind,
            encoding="json-object",
            raw=text,
            wrap=True,
            limits=budget.limits,
            scrub=scrub,
        )
    if isinstance(value, list):
        _check_count(len(value), budget.limits)
        if any(isinstance(item, str) for item in value):
            events: list[Any] = []
            for i, item in enumerate(value):
                if isinstance(item, str):
                    events.extend(_as_list(_unpack_value(item, budget, index=i)))
                else:
                    events.append(item)
                    budget.count(1)
            return _summarise(
                events, kind=kind, encoding="packed", limits=budget.limits, scrub=scrub
            )
        return _summarise(
            value, kind=kind, encoding="json-array", raw=text, limits=budget.limits, scrub=scrub
        )
    if isinstance(value, str):
        try:
            unpacked = _unpack_value(value, budget)
        except _NotPacked as exc:
            raise RRWebError(
                f"{FIELD} is a JSON string but not @rrweb/packer output: {exc}"
            ) from None
        return _summarise(unpacked, kind=kind, encoding="packed", limits=budget.limits, scrub=scrub)
    raise RRWebError(
        f"{FIELD} must be an rrweb event, an array of events or @rrweb/packer output, "
        f"got JSON {json_type(value)}"
    )


def unpack(packed: str, *, limits: Limits | None = None) -> dict[str, Any] | list[Any]:
    """Undo @rrweb/packer pack(): one event, or the list pack() was given."""
    return _unpack_value(packed, _Budget(limits or limits_now()))


def load_events(events_json: bytes) -> list[dict[str, Any]]:
    """Parse stored events_json back into the list of events."""
    try:
        value = json.loads(events_json)
    except (ValueError, RecursionError) as exc:
        raise RRWebError(f"stored rrweb events are not JSON: {_json_error(exc)}") from None
    if not isinstance(value, list):
        raise RRWebError(f"stored rrweb events must be a JSON array, got {json_type(value)}")
    return value


def compress(events_json: bytes, *, base: bytes | None = None, level: int = DEFAULT_LEVEL) -> bytes:
    """Compress events_json with zstd, optionally against an earlier batch as dictionary."""
    return _codecs.compressor(level, base).compress(events_json)


def decompress(blob: bytes, *, base: bytes | None = None) -> bytes:
    """Undo compress(); base must be the one compress() was given."""
    try:
        return _codecs.decompressor(base).decompress(blob)
    except zstandard.ZstdError as exc:
        hint = "" if base is None else " (or was compressed against a different base)"
        raise RRWebError(f"stored rrweb blob is corrupt{hint}: {exc}") from None


def compress_segment(
    batches: Sequence[bytes], *, base: bytes | None = None, level: int = SEGMENT_LEVEL
) -> bytes:
    """Compress a finished segment's batches as one frame: far smaller than batch by batch."""
    header = struct.pack(f"<I{len(batches)}I", len(batches), *map(len, batches))
    return compress(header + b"".join(batches), base=base, level=level)


def decompress_segment(blob: bytes, *, base: bytes | None = None) -> list[bytes]:
    """Undo compress_segment(): the batches' events_json, in order."""
    data = decompress(blob, base=base)
    try:
        (count,) = struct.unpack_from("<I", data)
        lengths = struct.unpack_from(f"<{count}I", data, 4)
    except struct.error:
        raise RRWebError("stored rrweb segment has a broken header") from None
    offset = 4 + 4 * count
    if offset + sum(lengths) != len(data):
        raise RRWebError("stored rrweb segment's lengths do not match its content")
    batches = []
    for length in lengths:
        batches.append(data[offset : offset + length])
        offset += length
    return batches


# Where the strings shared_text compares may begin: after JSON's and CSS's punctuation, so
# that the same text is cut the same way in every sample, wherever it lies.
_CUT = re.compile(rb'[",:;{}\[\] ]')


def shared_text(
    samples: Sequence[bytes], *, keep: int = 2, min_share: int = 3, width: int = 48
) -> bytes:
    """What the first `keep` samples share with the others, for a compression dictionary.

    A byte of theirs is kept when it lies in a `width`-byte string (starting at punctuation)
    that at least `min_share` of the samples contain: text that the pages of many
    conversations repeat (a shop's markup and styles) stays, what one visitor saw goes.
    """

    def strings(text: bytes) -> Iterator[tuple[int, bytes]]:
        for cut in _CUT.finditer(text):
            start = cut.start()
            if start + width <= len(text):
                yield start, text[start : start + width]

    found = [{string for _, string in strings(text)} for text in samples]
    kept = bytearray()
    for number, text in enumerate(samples[:keep]):
        others = found[:number] + found[number + 1 :]
        covered = bytearray(len(text))
        for start, string in strings(text):
            if 1 + sum(string in other for other in others) >= min_share:
                covered[start : start + width] = b"\x01" * width
        end = 0
        while (start := covered.find(1, end)) >= 0:
            end = covered.find(0, start)
            end = len(text) if end < 0 else end
            kept += text[start:end]
    return bytes(kept)


# -- decoding ---------------------------------------------------------------------------------


class _NotPacked(RRWebError):
    """Text that @rrweb/packer did not produce; the message is the bare reason."""


def _unpack_value(
    packed: str, budget: _Budget, *, index: int | None = None
) -> dict[str, Any] | list[Any]:
    """Inflate one packer string; an object of "0", "1", ... keys becomes a list."""
    try:
        value = _inflate(packed, budget)
    except _NotPacked as exc:
        if index is None:
            raise
        raise RRWebError(f"{FIELD}: item {index} is not @rrweb/packer output: {exc}") from None
    budget.count(len(value) if isinstance(value, list) else 1)
    return value


def _inflate_bytes(raw: bytes, budget: _Budget) -> bytearray:
    """Inflate zlib data step by step, refusing it as soon as it crosses a cap."""
    inflater = zlib.decompressobj()
    out = bytearray()
    pending = raw
    while not inflater.eof:
        try:
            # One byte more than the room left, so crossing a cap is seen, never overshot.
            step = inflater.decompress(pending, min(INFLATE_STEP, budget.room(len(out)) + 1))
        except zlib.error as exc:
            raise _NotPacked(f"not zlib data ({exc})") from None
        pending = inflater.unconsumed_tail
        out += step
        budget.check_inflated(len(out), len(raw))
        if not step and not pending:
            raise _NotPacked("truncated zlib data")
    budget.inflated += len(out)
    return out


def _inflate(packed: str, budget: _Budget) -> dict[str, Any] | list[Any]:
    try:
        raw = packed.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise _NotPacked(f"character {exc.start} is beyond latin-1") from None
    data = _inflate_bytes(raw, budget)
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _NotPacked(f"inflates to text that is not UTF-8 ({exc.reason})") from None
    except (ValueError, RecursionError) as exc:
        raise _NotPacked(f"inflates to text that is not JSON: {_json_error(exc)}") from None
    del data
    if not isinstance(value, dict):
        raise _NotPacked(f"inflates to JSON {json_type(value)}, not an object")
    value.pop("v", None)
    # pack(array) spreads the array into an object: {"0": e0, "1": e1, ..., "v": "v1"}.
    # Ordered by length then text: numeric order without int(), which refuses 5,000 digits.
    if all(key.isdecimal() and key.isascii() for key in value):
        return [value[key] for key in sorted(value, key=lambda k: (len(k.lstrip("0")), k))]
    return value


def _as_list(value: dict[str, Any] | list[Any]) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _summarise(
    events: Any,
    *,
    kind: str,
    encoding: str,
    limits: Limits,
    raw: str | None = None,
    wrap: bool = False,
    scrub: Callable[[list], int] | None = None,
) -> DecodedBatch:
    """Validate the events and build the DecodedBatch; raw is the JSON text to store as is."""
    events = _as_list(events)
    if not events:
        raise RRWebError(f"{FIELD}: the batch holds no events")
    _check_count(len(events), limits)
    first_ts = last_ts = None
    full_snapshots = 0
    href: str | None = None
    seen_meta = False
    plugins: list[int] = []
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise RRWebError(f"{FIELD}: event {i} is JSON {json_type(event)}, not an object")
        etype = event.get("type")
        if type(etype) is not int:
            raise RRWebError(f"{FIELD}: event {i} has no integer type")
        if not 0 <= etype <= 6:
            raise RRWebError(f"{FIELD}: event {i} has unknown type {etype}")
        ts = event.get("timestamp")
        if type(ts) not in (int, float) or not math.isfinite(ts):
            raise RRWebError(f"{FIELD}: event {i} has no numeric timestamp")
        if not 0 <= ts <= MAX_TIMESTAMP:
            raise RRWebError(f"{FIELD}: event {i} has timestamp {ts} out of range")
        ts = int(ts)
        if first_ts is None or ts < first_ts:
            first_ts = ts
        if last_ts is None or ts > last_ts:
            last_ts = ts
        if etype == EventType.FULL_SNAPSHOT:
            full_snapshots += 1
        elif etype == EventType.META and not seen_meta:
            seen_meta = True
            data = event.get("data")
            if isinstance(data, dict) and isinstance(data.get("href"), str):
                href = data["href"]
        elif etype == EventType.PLUGIN:
            plugins.append(i)
        if kind == "init":
            if i == 0 and etype != EventType.META:
                raise RRWebError(
                    f"{FIELD}: init batch must begin with a Meta event (type 4), got type {etype}"
                )
            if etype == EventType.INCREMENTAL_SNAPSHOT and not full_snapshots:
                raise RRWebError(
                    f"{FIELD}: init batch has incremental event {i} "
                    f"before any FullSnapshot (type 2)"
                )
    if kind == "init" and not full_snapshots:
        raise RRWebError(f"{FIELD}: init batch has no FullSnapshot (type 2)")

    scrubbed = scrub(events) if scrub is not None else 0
    errors = page_errors(events, plugins)  # after scrubbing: what is kept is what is shown
    if raw is None or scrubbed:
        events_json = _dump(events)
    else:
        events_json = _utf8(f"[{raw}]" if wrap else raw)
    assert first_ts is not None and last_ts is not None
    return DecodedBatch(
        events_json=events_json,
        count=len(events),
        first_ts=first_ts,
        last_ts=last_ts,
        full_snapshots=full_snapshots,
        href=href,
        encoding=encoding,
        scrubbed=scrubbed,
        errors=errors,
        console_errors=console_error_count(errors),
        network_errors=network_error_count(errors),
    )


# -- console errors and failed requests -------------------------------------------------------
#
# The reference client records them as plugin events (type 6): rrweb's console plugin as
# {"plugin": "rrweb/console@1", "payload": {"level", "payload": [JSON text of each argument],
# "trace"}}, our own network recorder as {"plugin": "replay/network@1", "payload": {"kind":
# "fetch" | "xhr", "method", "url", "status" (0 when the request failed), "error",
# "duration"}}. Other plugins' events are stored and replayed, not listed.

CONSOLE_PLUGIN = "rrweb/console@1"
NETWORK_PLUGIN = "replay/network@1"
CONSOLE, NETWORK = "console", "network"
ERROR_LEVELS = frozenset({"error", "assert"})
# Console levels worth listing; the plugin can record every console.log of a page.
LISTED_LEVELS = ERROR_LEVELS | {"warn"}
# A page that logs in a loop must not fill the archive with rows: beyond this many per batch,
# entries are counted but not listed.
MAX_ERRORS_PER_BATCH = 100
MAX_MESSAGE_CHARS = 1000
MAX_URL_CHARS = 2000


class PageError(NamedTuple):
    """A console entry or a failed request, as the replay page lists it."""

    position: int  # the event's place in its batch
    ts: int
    kind: str  # CONSOLE or NETWORK
    level: str
    message: str
    url: str = ""
    method: str = ""
    status: int | None = None
    duration_ms: int | None = None


def console_error_count(errors: tuple[PageError, ...]) -> int:
    """Console entries at an error level (a warning is listed, not counted)."""
    return sum(e.kind == CONSOLE and e.level in ERROR_LEVELS for e in errors)


def network_error_count(errors: tuple[PageError, ...]) -> int:
    return sum(e.kind == NETWORK for e in errors)


def page_errors_of(events: list) -> tuple[PageError, ...]:
    """The console entries and failed requests of stored (already validated) events."""
    plugins = [
        i
        for i, event in enumerate(events)
        if isinstance(event, dict) and event.get("type") == EventType.PLUGIN
    ]
    return page_errors(events, plugins)


def page_errors(events: list, positions: list[int]) -> tuple[PageError, ...]:
    """The console entries and failed requests among the plugin events at `positions`."""
    found: list[PageError] = []
    for position in positions:
        event = events[position]
        data = event.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
            continue
        ts = int(event["timestamp"])
        if data.get("plugin") == CONSOLE_PLUGIN:
            error = _console_error(position, ts, data["payload"])
        elif data.get("plugin") == NETWORK_PLUGIN:
            error = _network_error(position, ts, data["payload"])
        else:
            continue
        if error is not None:
            found.append(error)
    return tuple(found)


def _console_error(position: int, ts: int, payload: dict) -> PageError | None:
    level = payload.get("level")
    if not isinstance(level, str) or level not in LISTED_LEVELS:  # a list is no set member
        return None
    args = payload.get("payload")
    words = []
    for arg in args if isinstance(args, list) else []:
        if not isinstance(arg, str):
            continue
        try:
            value = json.loads(arg)
        except (ValueError, RecursionError):
            value = arg
        words.append(value if isinstance(value, str) else arg)
    message = " ".join(words).strip() or "(no message)"
    return PageError(position, ts, CONSOLE, level, _text(message, MAX_MESSAGE_CHARS))


def _text(value: str, limit: int) -> str:
    """Cut to `limit` characters; U+0000, which PostgreSQL's text refuses, becomes U+FFFD."""
    return value[:limit].replace("\x00", "\ufffd")


def _int_or_none(value: object) -> int | None:
    if type(value) in (int, float) and math.isfinite(value) and 0 <= value < 2**31:
        return int(value)
    return None


def _network_error(position: int, ts: int, payload: dict) -> PageError | None:
    status = _int_or_none(payload.get("status"))
    if status is not None and 0 < status < 400:
        return None  # a recorder of another make may send successes too
    url = payload.get("url") if isinstance(payload.get("url"), str) else ""
    method = payload.get("method") if isinstance(payload.get("method"), str) else ""
    error = payload.get("error") if isinstance(payload.get("error"), str) else ""
    method = (method or "GET").upper()
    outcome = str(status) if status else error or "failed"
    return PageError(
        position,
        ts,
        NETWORK,
        "error",
        _text(f"{method} {url} {outcome}", MAX_MESSAGE_CHARS),
        url=_text(url, MAX_URL_CHARS),
        method=_text(method, 16),
        status=status or None,
        duration_ms=_int_or_none(payload.get("duration")),
    )


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RRWebError(
            f"{FIELD} is not valid Unicode (lone surrogate at character {exc.start})"
        ) from None


def _dump(events: list[Any]) -> bytes:
    """Serialise unpacked events compactly; escape only if raw text cannot be UTF-8."""
    try:
        return json.dumps(
            events, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate from a \\ud800 escape survives only as an escape.
        return json.dumps(events, separators=(",", ":"), allow_nan=False).encode("ascii")
    except RecursionError:
        raise RRWebError(f"{FIELD}: events cannot be stored as JSON (nested too deeply)") from None
    except ValueError as exc:
        raise RRWebError(f"{FIELD}: events cannot be stored as JSON ({exc})") from None


def _reject_constant(name: str) -> float:
    """Refuse NaN and Infinity: not JSON, and a browser's JSON.parse would fail on them."""
    raise ValueError(f"{name} is not a JSON value")


# Built once: json.loads with a hook would build a new decoder for every batch.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _json_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at character {exc.pos}"
    return str(exc)


# -- compression --------------------------------------------------------------------------------

_CACHE_SIZE = 32


class _Codecs(threading.local):
    """Per-thread zstd objects: they are not thread-safe, and loading a base costs time."""

    def __init__(self) -> None:
        self.plain_c: dict[int, zstandard.ZstdCompressor] = {}
        self.plain_d = zstandard.ZstdDecompressor()
        self.dict_c: OrderedDict[tuple[int, bytes], zstandard.ZstdCompressor] = OrderedDict()
        self.dict_d: OrderedDict[bytes, zstandard.ZstdDecompressor] = OrderedDict()

    def compressor(self, level: int, base: bytes | None) -> zstandard.ZstdCompressor:
        if not base:
            if level not in self.plain_c:
                self.plain_c[level] = zstandard.ZstdCompressor(level=level, write_checksum=True)
            return self.plain_c[level]
        key = (level, bytes(base))
        found = self.dict_c.get(key)
        if found is None:
            data = _raw_dict(key[1])
            data.precompute_compress(level=level)  # else zstd re-indexes the base on every call
            found = zstandard.ZstdCompressor(level=level, dict_data=data, write_checksum=True)
            self.dict_c[key] = found
            if len(self.dict_c) > _CACHE_SIZE:
                self.dict_c.popitem(last=False)
        else:
            self.dict_c.move_to_end(key)
        return found

    def decompressor(self, base: bytes | None) -> zstandard.ZstdDecompressor:
        if not base:
            return self.plain_d
        key = bytes(base)
        found = self.dict_d.get(key)
        if found is None:
            found = zstandard.ZstdDecompressor(dict_data=_raw_dict(key))
            self.dict_d[key] = found
            if len(self.dict_d) > _CACHE_SIZE:
                self.dict_d.popitem(last=False)
        else:
            self.dict_d.move_to_end(key)
        return found


def _raw_dict(base: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


_codecs = _Codecs()
