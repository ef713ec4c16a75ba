"""Scrubbing: card numbers (and patterns set in REPLAY_SCRUB_PATTERNS) masked out of text.

Pure: no database, no I/O. Ingest calls `scrub_text` on message bodies and `scrub_events` on
each decoded rrweb batch before storing them, so what a shopper typed or saw never reaches the
archive. A card number is 13 to 19 digits, optionally grouped by single spaces or dashes, that
passes the Luhn check (numbers that fail it, such as order ids, are kept); it becomes a mask of
the same shape keeping the last four digits, "**** **** **** 1111", so a replayed page keeps
its layout.
"""

import re
from collections.abc import Iterable
from functools import lru_cache

from conversations import conf

MASK = "*"
# 13-19 digits, single spaces or dashes between them, not part of a longer run of digits,
# nor of a word: a run of digits inside a hex checksum or a token is not a card number.
CARD_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![ -]?\d)(?![A-Za-z])")
# Envelope keys that name things rather than say them: never scrubbed.
IDENTIFIER_KEY = re.compile(r"(uuid|arn|sha256|_id|_dts|_key|_keys)$")

# rrweb event types and incremental sources that carry text (rrweb's EventType and
# IncrementalSource).
FULL_SNAPSHOT, INCREMENTAL, META, CUSTOM, PLUGIN = 2, 3, 4, 5, 6
MUTATION, INPUT = 0, 5


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(match: re.Match) -> str:
    found = match.group()
    digits = [c for c in found if c.isdigit()]
    if not luhn_valid("".join(digits)):
        return found
    keep_from = len(digits) - 4
    masked, seen = [], 0
    for char in found:
        if char.isdigit():
            masked.append(char if seen >= keep_from else MASK)
            seen += 1
        else:
            masked.append(char)
    return "".join(masked)


@lru_cache(maxsize=8)
def _compiled(patterns: tuple[tuple[str, str], ...]) -> list[tuple[re.Pattern, str]]:
    return [(re.compile(pattern), replacement) for pattern, replacement in patterns]


def extra_patterns() -> list[tuple[re.Pattern, str]]:
    """REPLAY_SCRUB_PATTERNS: (regular expression, replacement) pairs applied after cards."""
    return _compiled(tuple(tuple(pair) for pair in conf.get("REPLAY_SCRUB_PATTERNS")))


_TIMESTAMP = '"timestamp":'
# Every card-number match lies in a run of 13 or more digits, spaces and dashes that starts
# and ends with a digit. In rrweb JSON nearly every such run is an event's timestamp: 13
# digits right after the key (inside a JSON string the quotes around "timestamp" would be
# escaped), followed by something else.
_DIGIT_RUN = re.compile(r"\d[\d -]{11,}\d")
_TIMESTAMP_RUN = re.compile(rb'"timestamp":[0-9]{13}(?![0-9 -])')
# The text's bytes with digits, spaces and dashes as "0" and all else as "x": the runs are
# then found by bytes.count, in C, where a regular expression would try a match at every
# digit (and rrweb JSON is full of digits).
_RUN_BYTES = bytes(0x30 if chr(b) in "0123456789 -" else 0x78 for b in range(256))
_RUN_13, _RUN_14 = b"0" * 13, b"0" * 14


# Every byte below 0x80: deleted, they leave the UTF-8 of the text's other characters.
_ASCII_BYTES = bytes(range(0x80))
_DIGIT = re.compile(r"\d")
# A JSON escape: a surrogate pair (one character beyond the BMP) or one \uXXXX.
_ESCAPE = re.compile(rb"\\u(d[89ab]..)\\u(d[c-f]..)|\\u(....)", re.IGNORECASE)


def _escapes_digit(data: bytes) -> bool:
    """Whether a JSON escape in the text (or what looks like one) stands for a digit."""
    for high, low, single in set(_ESCAPE.findall(data)):
        try:
            if single:
                point = int(single, 16)
            else:
                point = 0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00
        except ValueError:
            continue  # not hex: not an escape
        if chr(point).isdecimal():
            return True
    return False


def may_hold_card(events_json: str) -> bool:
    """Whether a batch's JSON text might hold a card number (else scrubbing can be skipped).

    Every rrweb event has a 13-digit timestamp, which the card pattern matches; those are
    passed over, as are digit runs failing the Luhn check. Text that is not plain JSON
    (packed data) and configured patterns always need the full walk.
    """
    start = events_json.lstrip()[:2]
    if start not in ("[{", '{"', "[]") or conf.get("REPLAY_SCRUB_PATTERNS"):
        return True
    data = events_json.encode("utf-8", "surrogatepass")
    # A digit written as an escape ("\\uff11") is a digit once parsed, beside the digits
    # written as themselves: only the walk over the parsed events sees that number.
    if b"\\u" in data and _escapes_digit(data):
        return True
    if not events_json.isascii():
        beyond = data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")
        if _DIGIT.search(beyond):
            return _runs_may_hold_card(events_json)  # digits beyond ASCII: the slow way
    marked = data.translate(_RUN_BYTES)
    # Runs of exactly 13 (none longer), as many as the timestamps, are the timestamps.
    runs = marked.count(_RUN_13)
    if not runs or (_RUN_14 not in marked and runs == len(_TIMESTAMP_RUN.findall(data))):
        return False
    return _runs_may_hold_card(events_json)


def _runs_may_hold_card(events_json: str) -> bool:
    """Whether a run of digits in the text, other than a timestamp, is a Luhn-valid number."""
    for run in _DIGIT_RUN.finditer(events_json):
        start, end = run.span()
        if end - start == 13 and events_json.endswith(_TIMESTAMP, 0, start):
            continue  # the common case: an event's timestamp
        # Two characters either side are all CARD_NUMBER's lookarounds need.
        for match in CARD_NUMBER.finditer(events_json, max(0, start - 2), end + 2):
            if events_json.endswith(_TIMESTAMP, 0, match.start()):
                continue
            if luhn_valid("".join(c for c in match.group() if c.isdigit())):
                return True
    return False


def scrub_text(text: str) -> tuple[str, int]:
    """`text` with card numbers and configured patterns masked, and how many were masked."""
    count = 0

    def card(match: re.Match) -> str:
        nonlocal count
        masked = _mask_card(match)
        count += masked != match.group()
        return masked

    # Most text holds no run of digits long enough: a search (in C) finds that fastest.
    if CARD_NUMBER.search(text):
        text = CARD_NUMBER.sub(card, text)
    for pattern, replacement in extra_patterns():
        text, found = pattern.subn(replacement, text)
        count += found
    return text, count


def _scrub_key(container: dict | list, key, count: int) -> int:
    value = container[key]
    if isinstance(value, str):
        container[key], found = scrub_text(value)
        return count + found
    return count


def scrub_strings(value: object, *, identifiers: bool = False) -> int:
    """Scrub every string inside nested lists and dicts, in place.

    With `identifiers`, values under keys that name things (IDENTIFIER_KEY: uuids, arns,
    checksums) are left as they are.
    """
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        keys: Iterable = item.keys() if isinstance(item, dict) else range(len(item))
        for key in keys:
            if identifiers and isinstance(key, str) and IDENTIFIER_KEY.search(key):
                continue
            child = item[key]
            if isinstance(child, str):
                item[key], found = scrub_text(child)
                count += found
            elif isinstance(child, dict | list):
                stack.append(child)
    return count


def _scrub_node(node: object) -> int:
    """Scrub a serialized DOM node and its descendants (text, attribute values), in place."""
    count = 0
    stack = [node]
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            continue
        if "textContent" in item:
            count = _scrub_key(item, "textContent", count)
        attributes = item.get("attributes")
        if isinstance(attributes, dict):
            count += scrub_strings(attributes)
        children = item.get("childNodes")
        if isinstance(children, list):
            stack.extend(children)
    return count


def scrub_event(event: object) -> int:
    """Scrub one decoded rrweb event in place; return how many things were masked."""
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        return 0
    data = event["data"]
    kind = event.get("type")
    if kind == FULL_SNAPSHOT:
        return _scrub_node(data.get("node"))
    if kind == META:
        return _scrub_key(data, "href", 0) if "href" in data else 0
    if kind in (CUSTOM, PLUGIN):  # a plugin's payload: console messages, request URLs
        return scrub_strings(data)
    if kind != INCREMENTAL:
        return 0
    source = data.get("source")
    if source == INPUT:
        return _scrub_key(data, "text", 0) if "text" in data else 0
    if source != MUTATION:
        return 0
    count = 0
    for added in data.get("adds") or []:
        if isinstance(added, dict):
            count += _scrub_node(added.get("node"))
    for changed in data.get("texts") or []:
        if isinstance(changed, dict) and "value" in changed:
            count = _scrub_key(changed, "value", count)
    for changed in data.get("attributes") or []:
        if isinstance(changed, dict) and isinstance(changed.get("attributes"), dict):
            count += scrub_strings(changed["attributes"])
    return count


def scrub_events(events: list) -> int:
    """Scrub a decoded rrweb batch (a list of events) in place; return how many were masked."""
    return sum(scrub_event(event) for event in events)
