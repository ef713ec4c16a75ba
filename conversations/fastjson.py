"""JSON parsed by orjson where it gives what the standard library would, for the hot paths.

Ingest parses every frame twice (the envelope, then the rrweb batch inside it), and the
standard library's decoder is the larger part of that. orjson parses the same JSON three
times as fast. Where the two differ, orjson refuses (NaN and Infinity, a number too large for
a float, lone surrogates, nesting deeper than 1,024) or gives a float for an integer beyond
64 bits, which the standard library keeps exact. `loads` hands all of those back to the
caller's own `json` path, which knows what to say about a refusal, so a frame is stored or
rejected exactly as before, only sooner.
"""

from typing import Any

import orjson

MISS: Any = object()  # orjson did not decide: parse with the standard library
# orjson sets aside room for as many values as the text could hold (about 12 bytes a byte of
# text, measured); the standard library only for those it finds. Larger texts, which are
# rare (a batch is some kilobytes), take the standard library's way, so that a hostile
# frame cannot make a worker hold ten times its size.
MAX_CHARS = 1 << 20


def loads(text: str, *, exact_numbers: bool = True) -> Any:
    """`text` parsed, or MISS where the standard library's decoder must decide.

    `exact_numbers`: a result holding any float is a MISS too (orjson turns an integer
    beyond 64 bits into one). Leave it on where the values are stored as parsed; turn it off
    where only the text is kept and the values are only looked at.
    """
    if len(text) > MAX_CHARS:
        return MISS
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return MISS
    if exact_numbers and _holds_float(value):
        return MISS
    return value


def _holds_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            return True
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False
